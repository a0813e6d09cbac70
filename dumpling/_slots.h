/*
 * dumpling/_slots.h: where a Python class's __slots__ fields lie, for the C code that reads and
 * writes a value's fields at their offsets (the native handlers in _collections.c, the Lua
 * bridge, the payload's value builders in payload/_listpack.c): one lookup, made when each is
 * configured.  (Not in _native.h: structmember.h's names, e.g. RESTRICTED, clash with some of
 * its includers' own.)
 */
#ifndef DUMPLING_SLOTS_H
#define DUMPLING_SLOTS_H

#include <Python.h>
#include <structmember.h>

/* The offset of `name`, a __slots__ member of class `cls` (its own or a base's) that holds an
 * object: >= 0, or -1 with an exception set (AttributeError, or TypeError when it is something
 * else).  The C code that reads and writes a Python value's fields at their offsets (the native
 * handlers, the Lua bridge, the payload's value builders) finds them here once, when configured,
 * and declines those values when a field is not such a slot. */
static inline Py_ssize_t native_slot_offset(PyObject *cls, const char *name) {
    PyObject *descr = PyObject_GetAttrString(cls, name);
    if (descr == NULL)
        return -1;
    Py_ssize_t offset = -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type) && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX &&
        !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY))
        offset = ((PyMemberDescrObject *)descr)->d_member->offset;
    else
        PyErr_Format(PyExc_TypeError, "%R.%s is not a slot", cls, name);
    Py_DECREF(descr);
    return offset;
}

/* native_slot_offset of each of `names` into `offsets`: 1 all are slots, 0 one is not (no
 * exception left), -1 on another error. */
static inline int native_slot_offsets(PyObject *cls, const char *const *names, int n, Py_ssize_t *offsets) {
    if (!PyType_Check(cls))
        return 0;
    for (int i = 0; i < n; i++) {
        if ((offsets[i] = native_slot_offset(cls, names[i])) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError) && !PyErr_ExceptionMatches(PyExc_TypeError))
                return -1;
            PyErr_Clear();
            return 0;
        }
    }
    return 1;
}

/* native_slot_offsets of `names` when they are all of `cls`'s __slots__ (as many of them; no
 * __dict__, no items), so that code making an instance itself writes every field: 1, or 0 not
 * (no exception left), -1 on another error. */
static inline int native_exact_slots(PyObject *cls, const char *const *names, int n, Py_ssize_t *offsets) {
    if (!PyType_Check(cls) || ((PyTypeObject *)cls)->tp_dictoffset != 0 || ((PyTypeObject *)cls)->tp_itemsize != 0)
        return 0;
    PyObject *slots = PyObject_GetAttrString(cls, "__slots__");
    Py_ssize_t count = slots == NULL ? -1 : PyObject_Length(slots);
    Py_XDECREF(slots);
    if (count < 0) {
        PyErr_Clear();
        return 0;
    }
    return count == n ? native_slot_offsets(cls, names, n, offsets) : 0;
}

#endif
