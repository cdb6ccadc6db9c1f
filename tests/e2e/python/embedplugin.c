/* A plugin linked with libpython, for embedhost.c: it initializes Python, runs a line
 * and finalizes it. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

int plugin_run(void);

int plugin_run(void)
{
	Py_Initialize();
	int rc = PyRun_SimpleString("print('py ok', len(bytearray(1000)))\n");
	Py_Finalize();
	return rc;
}
