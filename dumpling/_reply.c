/*
 * dumpling/_reply.c: `Raw`, a pre-encoded reply (its RESP bytes in `wire`), as a C type.
 *
 * Handlers that write a reply whole (LRANGE from its entries, GEOPOS, XRANGE, a pub/sub
 * message, HGETALL of a big hash, ...) wrap the bytes in a Raw so the encoders copy them as
 * they are.  protocol.Raw in Python costs a class call, an __init__ frame and a GC-tracked
 * object (~1.1k instructions a reply); this one is made by one vectorcall and is not tracked
 * (it holds only bytes).  dumpling.protocol uses it in place of its Python class when built;
 * both have the one attribute `wire` and nothing else, and every check is `type(v) is Raw`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *wire;
} RawObject;

static PyTypeObject RawType;

static PyObject *raw_make(PyObject *wire) {
    RawObject *self = PyObject_New(RawObject, &RawType);
    if (self == NULL)
        return NULL;
    self->wire = Py_NewRef(wire);
    return (PyObject *)self;
}

/* Raw(wire): the one positional argument, as the Python class takes it. */
static PyObject *raw_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Raw(wire) takes exactly one positional argument");
        return NULL;
    }
    (void)type;
    return raw_make(args[0]);
}

static PyObject *raw_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *wire;
    static char *names[] = {"wire", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Raw", names, &wire))
        return NULL;
    (void)type;
    return raw_make(wire);
}

static void raw_dealloc(RawObject *self) {
    Py_XDECREF(self->wire);
    PyObject_Free(self);
}

static PyObject *raw_repr(RawObject *self) {
    return PyUnicode_FromFormat("Raw(%R)", self->wire);
}

static PyMemberDef raw_members[] = {
    {"wire", T_OBJECT_EX, offsetof(RawObject, wire), 0, "the reply's RESP bytes"},
    {NULL},
};

static PyTypeObject RawType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dumpling._reply.Raw",
    .tp_doc = "Pre-encoded reply bytes, identical in both protocols.",
    .tp_basicsize = sizeof(RawObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = raw_new,
    .tp_dealloc = (destructor)raw_dealloc,
    .tp_repr = (reprfunc)raw_repr,
    .tp_members = raw_members,
    .tp_vectorcall = raw_vectorcall,
};

static struct PyModuleDef reply_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dumpling._reply",
    .m_doc = "Raw, a pre-encoded reply, as a C type (dumpling.protocol uses it when built).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__reply(void) {
    if (PyType_Ready(&RawType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&reply_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Raw", (PyObject *)&RawType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
