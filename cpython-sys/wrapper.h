/* Everything cds needs to see of the target interpreter, including the
 * internal layouts (PyGC_Head, config) that only Py_BUILD_CORE exposes. */
#define Py_BUILD_CORE 1
#include "Python.h"
#include "frameobject.h"
#include "marshal.h"
#include "internal/pycore_gc.h"
#include "internal/pycore_code.h"
#include "internal/pycore_interp.h"
