/* Keyspace values out of the cyclic garbage collector's sight (dumpling.collector).
 *
 * CPython's full collection traverses every tracked container: a keyspace of a million
 * hashes, or one list of millions of elements, costs hundreds of milliseconds per full
 * collection, during which no client is served. A stored value holds bytes, ints, floats
 * and containers of those: it cannot be part of a reference cycle, so the collector need
 * not look at it. CPython untracks dicts and tuples of atomic items by itself; this does
 * the same for a value and the containers it alone owns.
 *
 * hide(container): untracks a container without looking at its contents, for a caller that
 * knows nothing it holds refers back to it: a database's dict of values. (A dict tracks
 * itself again whenever a value of a GC type is stored in it, tracked or not.)
 *
 * untrack(obj) -> bool: untracks ``obj`` when every object it refers to is atomic (not a
 * GC type), already untracked, a type object, or a tracked object that only ``obj`` holds
 * (reference count 1) and that can itself be untracked by the same rule (to a bounded
 * depth). An object reaching something else stays tracked, so an object that is, or may
 * be, on a cycle is never hidden from the collector. True if ``obj`` is untracked after
 * the call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_DEPTH 8

static int untrack_tree(PyObject *obj, int depth);

typedef struct {
    int depth;  /* the depth of the object whose referents are visited */
} Walk;

static int visit(PyObject *child, void *arg) {
    Walk *walk = (Walk *)arg;
    if (!PyObject_IS_GC(child) || !PyObject_GC_IsTracked(child) || PyType_Check(child))
        return 0;
    if (walk->depth < MAX_DEPTH && Py_REFCNT(child) == 1 && untrack_tree(child, walk->depth + 1))
        return 0;
    return 1; /* a tracked referent shared with others (or too deep): stop, keep the parent tracked */
}

/* 1 if obj is untracked when this returns. Its owned referents may be untracked even when
 * obj itself stays tracked: each of those refers only to untracked objects, so none is on a
 * cycle. */
static int untrack_tree(PyObject *obj, int depth) {
    if (!PyObject_IS_GC(obj) || !PyObject_GC_IsTracked(obj))
        return 1;
    traverseproc traverse = Py_TYPE(obj)->tp_traverse;
    if (traverse == NULL)
        return 0;
    Walk walk = {depth};
    if (traverse(obj, visit, &walk) != 0)
        return 0;
    PyObject_GC_UnTrack(obj);
    return 1;
}

static PyObject *untrack(PyObject *module, PyObject *obj) {
    (void)module;
    return PyBool_FromLong(untrack_tree(obj, 0));
}

static PyObject *hide(PyObject *module, PyObject *obj) {
    (void)module;
    if (PyObject_IS_GC(obj) && PyObject_GC_IsTracked(obj))
        PyObject_GC_UnTrack(obj);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"untrack", untrack, METH_O,
     "untrack(obj) -> bool: hide obj (and the containers only it holds) from the cyclic GC when "
     "nothing it reaches can form a cycle; True if obj is untracked afterwards"},
    {"hide", hide, METH_O,
     "hide(container): untrack it without looking at what it holds; only for a container "
     "that nothing it holds can refer back to (a database's dict of values)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "dumpling._untrack", "Keyspace values out of the cyclic GC's sight.", -1, methods,
};

PyMODINIT_FUNC PyInit__untrack(void) {
    return PyModule_Create(&module_def);
}
