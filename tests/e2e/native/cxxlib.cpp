// A C++ library used by a C program (cxxindirect.c): libstdc++ reaches the process only
// through this library, so its operator new is looked up after the preloaded library's
// own dependencies.
#include <cstddef>

extern "C" char *cxxlib_alloc(std::size_t n)
{
	return new char[n]; // @CXXLIB_NEW
}

extern "C" void cxxlib_free(char *p)
{
	delete[] p;
}
