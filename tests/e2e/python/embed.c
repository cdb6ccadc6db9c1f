/* A program that embeds Python (linked with libpython) and initializes it twice:
 *   embed twice   round 1 keeps `first` (5,000,000 bytes) and finalizes (freeing it);
 *                 round 2 keeps `second` (3,000,000 bytes) and finalizes; then the
 *                 program leaks a malloc of 2,000,000 bytes
 *   embed killed  round 1 as above; round 2 keeps `second` and ends the process with
 *                 SIGTERM before finalizing
 *   embed options sets warning and -X options (100 of each) before it initializes Python:
 *                 CPython allocates each under its default allocator, put back for a
 *                 moment (memprof must not take each moment for a new allocator)
 * The rounds' code is at line 1 of files named round1 and round2 (compiled under those
 * names: "<string>" is also what site.py's .pth lines run as). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#if PY_VERSION_HEX >= 0x030d0000
/* gone from 3.13's headers, still in its library (and what older embedders call) */
PyAPI_FUNC(void) PySys_AddWarnOption(const wchar_t *);
PyAPI_FUNC(void) PySys_AddXOption(const wchar_t *);
#endif
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "options")) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* still in 3.11, and what embedders call */
		for (int i = 0; i < 100; i++) {
			PySys_AddWarnOption(L"ignore");
			PySys_AddXOption(L"memprof_test");
		}
#pragma GCC diagnostic pop
		Py_Initialize();
		PyRun_SimpleString("import sys; print(len(sys.warnoptions), len(sys._xoptions))\n");
		return Py_FinalizeEx() < 0 ? 1 : 0;
	}
	if (strcmp(mode, "twice") && strcmp(mode, "killed")) {
		fprintf(stderr, "usage: embed twice|killed|options\n");
		return 2;
	}
	Py_Initialize();
	PyRun_SimpleString("exec(compile('first = bytearray(5000000)', 'round1', 'exec'))\n");
	if (Py_FinalizeEx() < 0)
		return 1;
	Py_InitializeEx(0);
	PyRun_SimpleString("exec(compile('second = bytearray(3000000)', 'round2', 'exec'))\n");
	if (!strcmp(mode, "killed"))
		PyRun_SimpleString("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n");
	if (Py_FinalizeEx() < 0)
		return 1;
	void *volatile leak = malloc(2000000);
	(void)leak;
	puts("done");
	return 0;
}
