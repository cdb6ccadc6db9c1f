#!/bin/sh
# jemalloc_private.sh IN.a OUT.a: a copy of jemalloc's static archive whose public
# symbols (malloc, free, mallocx, operator new, malloc_conf, ...) are renamed
# memprof_je_*. Linked into libmemprof.so with every archive symbol hidden, jemalloc
# is memprof's alone: nothing of it can be bound by the program (Debian's libjemalloc.so,
# a dependency of the preloaded library, came before libstdc++ in the lookup order of a
# program that does not link libstdc++ itself, so a C++ library's operator new went to
# jemalloc, unrecorded, and its memory to glibc's free).
set -eu
in=$1
out=$2
map=$out.syms
nm -g --defined-only "$in" |
	awk 'NF == 3 && $3 !~ /^(je_|DW\.ref\.)/ { print $3 " memprof_je_" $3 }' | sort -u >"$map"
# and its system calls for pages, which must not reach memprof's own mmap hooks (real.c)
printf 'mmap memprof_sys_mmap\nmunmap memprof_sys_munmap\n' >>"$map"
objcopy --redefine-syms="$map" "$in" "$out"
