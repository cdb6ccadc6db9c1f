// C++: operator new/delete at known lines.
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

struct Obj {
	char payload[256];
};

struct WithDtor {
	long x, y;
	~WithDtor() { x = 0; }
};

static char outbuf[1 << 16];

int main()
{
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	int *arr = new int[1000]; // @NEW_ARRAY
	Obj *objs[10];
	for (int i = 0; i < 10; i++)
		objs[i] = new Obj(); // @NEW_OBJ
	for (int i = 0; i < 10; i++)
		delete objs[i];
	WithDtor *wd = new WithDtor[10]; // @NEW_COOKIE
	char *al = new (std::align_val_t(64)) char[128]; // @NEW_ALIGNED
	static volatile size_t huge = (size_t)1 << 62;
	char *nt = new (std::nothrow) char[huge]; // @NEW_NOTHROW
	bool caught = false;
	try {
		char *h = new char[huge]; // @NEW_THROW
		std::printf("huge %p\n", (void *)h);
	} catch (const std::bad_alloc &) {
		caught = true;
	}
	std::printf("aligned %d nothrow %s bad_alloc %d\n", (int)((unsigned long)al % 64 == 0), nt ? "non-null" : "null",
		    (int)caught);
	delete[] wd;
	operator delete[](al, std::align_val_t(64));
	{
		// the standard library's templates, compiled into this program, are not the line
		std::vector<int> v;
		for (int i = 0; i < 1000; i++)
			v.push_back(i); // @VECTOR
		std::string s(100, 'x'); // @STRING
		std::printf("%zu %zu\n", v.size(), s.size());
	}
	arr[0] = 1;
	return arr[0] - 1;
}
