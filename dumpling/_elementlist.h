/*
 * dumpling/_elementlist.h: the C entry points dumpling._elementlist lends other extensions.
 *
 * dumpling._collections' one-element list push and pop (the native LPUSH/RPUSH/LPOP/RPOP
 * handlers and ListValue's common case) call these instead of the ElementList's Python
 * methods: no method lookup, and the entry's size comes back with the change (the node
 * bookkeeping needs it) instead of being worked out again from the element.
 *
 * Found through a capsule, ELEMENTLIST_CAPSULE, holding an ElementListApi; `type` tells which
 * objects the functions take (anything else goes through the Python methods).
 */
#ifndef DUMPLING_ELEMENTLIST_H
#define DUMPLING_ELEMENTLIST_H

#include <Python.h>

#define ELEMENTLIST_CAPSULE "dumpling._elementlist._api"

typedef struct {
    PyTypeObject *type;
    /* Push s[0:n] at the head (front) or the tail: the entry's size, or -1 with an exception. */
    Py_ssize_t (*push)(PyObject *list, const char *s, Py_ssize_t n, int front);
    /* Pop the head or the tail element (a new bytes) and its entry's size; NULL with an
     * exception (IndexError when empty). */
    PyObject *(*pop)(PyObject *list, int head, Py_ssize_t *entry_size);
} ElementListApi;

#endif
