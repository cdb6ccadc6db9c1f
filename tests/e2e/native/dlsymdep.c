/* The dependency of libdlsymplug.so (test_dlsym). */
int dep_value(void);
int dep_value(void)
{
	return 42;
}
