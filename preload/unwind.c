/* memprof's own unwinder for mixed stacks (see unwind.h). */
#define _GNU_SOURCE
#include "unwind.h"
#include "mem.h"
#include "modules.h"
#include "mp.h"
#include "native.h"

#include <string.h>

bool unwind_check;
atomic_ulong unwind_checked, unwind_answered, unwind_differed;

/* ---- the CFA rule of an instruction pointer ------------------------------------------- */

/* libgcc's look-up of the FDE that covers pc (in every loaded object's .eh_frame, by the
 * binary-search table of .eh_frame_hdr); exported by libgcc_s since GCC 3.0. */
struct dwarf_eh_bases {
	void *tbase, *dbase, *func;
};
extern const void *_Unwind_Find_FDE(void *pc, struct dwarf_eh_bases *bases);

/* Rules found so far, one word each: ip << 16 | c, where c (8 .. 65535) says the CFA is
 * rsp + c with the return address at CFA - 8, and 0 that the frame is of another kind.
 * Open addressing; entries are only ever added (a compare-and-swap into an empty word),
 * so readers need no lock; a full table just stops remembering. */
#define UNWIND_RULES 8192u
static _Atomic(_Atomic uint64_t *) unwind_rules;
static atomic_uint unwind_rules_n;

/* DWARF register numbers on x86-64. */
#define UNWIND_REG_RSP 7
#define UNWIND_REG_RA 16

typedef struct unwind_row {
	int64_t cfa_off;
	unsigned cfa_reg;
	bool cfa_expr;
	bool ra_saved; /* the return address is saved at CFA + ra_off */
	int64_t ra_off;
} unwind_row_t;

typedef struct unwind_cfi {
	const uint8_t *p, *end;
	uint64_t code_align;
	int64_t data_align;
	bool bad;
} unwind_cfi_t;

static uint64_t unwind_uleb(unwind_cfi_t *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; r->p < r->end; shift += 7) {
		uint8_t b = *r->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

static int64_t unwind_sleb(unwind_cfi_t *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	for (;;) {
		if (r->p >= r->end) {
			r->bad = true;
			return 0;
		}
		uint8_t b = *r->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			if (shift < 64 && (b & 0x40))
				v |= ~0ull << shift;
			return (int64_t)v;
		}
	}
}

static uint64_t unwind_fixed(unwind_cfi_t *r, unsigned size)
{
	if ((size_t)(r->end - r->p) < size) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	memcpy(&v, r->p, size); /* little-endian */
	r->p += size;
	return v;
}

/* Skips an encoded pointer (DW_EH_PE_*; its value is not needed). */
static void unwind_skip_ptr(unwind_cfi_t *r, uint8_t enc)
{
	if (enc == 0xff) /* DW_EH_PE_omit */
		return;
	switch (enc & 0x0f) {
	case 0x00: /* absptr */
	case 0x04: /* udata8 */
	case 0x0c: /* sdata8 */
		unwind_fixed(r, 8);
		break;
	case 0x02: /* udata2 */
	case 0x0a: /* sdata2 */
		unwind_fixed(r, 2);
		break;
	case 0x03: /* udata4 */
	case 0x0b: /* sdata4 */
		unwind_fixed(r, 4);
		break;
	case 0x01: /* uleb128 */
		unwind_uleb(r);
		break;
	case 0x09: /* sleb128 */
		unwind_sleb(r);
		break;
	default:
		r->bad = true;
	}
	if ((enc & 0x70) == 0x50) /* aligned */
		r->bad = true;
}

/* Runs call frame instructions from location `loc` until the row for `target` is
 * complete (the next advance passes it) or they end. False on anything this unwinder
 * does not follow. */
static bool unwind_run(unwind_cfi_t *r, uint64_t loc, uint64_t target, unwind_row_t *row, const unwind_row_t *init)
{
	unwind_row_t stack[16];
	unsigned depth = 0;
	while (r->p < r->end && !r->bad) {
		uint8_t op = *r->p++;
		uint64_t reg, delta = 0;
		int64_t off;
		switch (op >> 6) {
		case 1: /* advance_loc */
			delta = op & 0x3f;
			goto advance;
		case 2: /* offset */
			off = (int64_t)unwind_uleb(r) * r->data_align;
			if ((op & 0x3f) == UNWIND_REG_RA) {
				row->ra_saved = true;
				row->ra_off = off;
			}
			continue;
		case 3: /* restore */
			if ((op & 0x3f) == UNWIND_REG_RA) {
				row->ra_saved = init->ra_saved;
				row->ra_off = init->ra_off;
			}
			continue;
		}
		switch (op) {
		case 0x00: /* nop */
			break;
		case 0x02: /* advance_loc1 */
			delta = unwind_fixed(r, 1);
			goto advance;
		case 0x03: /* advance_loc2 */
			delta = unwind_fixed(r, 2);
			goto advance;
		case 0x04: /* advance_loc4 */
			delta = unwind_fixed(r, 4);
			goto advance;
		case 0x05: /* offset_extended */
			reg = unwind_uleb(r);
			off = (int64_t)unwind_uleb(r) * r->data_align;
			goto offset;
		case 0x11: /* offset_extended_sf */
			reg = unwind_uleb(r);
			off = unwind_sleb(r) * r->data_align;
			goto offset;
		case 0x2f: /* GNU_negative_offset_extended */
			reg = unwind_uleb(r);
			off = -(int64_t)unwind_uleb(r) * r->data_align;
			goto offset;
		case 0x06: /* restore_extended */
			if (unwind_uleb(r) == UNWIND_REG_RA) {
				row->ra_saved = init->ra_saved;
				row->ra_off = init->ra_off;
			}
			break;
		case 0x07: /* undefined */
		case 0x08: /* same_value */
			reg = unwind_uleb(r);
			goto other;
		case 0x09: /* register */
		case 0x14: /* val_offset */
			reg = unwind_uleb(r);
			unwind_uleb(r);
			goto other;
		case 0x15: /* val_offset_sf */
			reg = unwind_uleb(r);
			unwind_sleb(r);
			goto other;
		case 0x10: /* expression */
		case 0x16: /* val_expression */
			reg = unwind_uleb(r);
			delta = unwind_uleb(r);
			if ((uint64_t)(r->end - r->p) < delta)
				return false;
			r->p += delta;
			goto other;
		case 0x0a: /* remember_state */
			if (depth == sizeof stack / sizeof stack[0])
				return false;
			stack[depth++] = *row;
			break;
		case 0x0b: /* restore_state */
			if (!depth)
				return false;
			*row = stack[--depth];
			break;
		case 0x0c: /* def_cfa */
			row->cfa_reg = (unsigned)unwind_uleb(r);
			row->cfa_off = (int64_t)unwind_uleb(r);
			row->cfa_expr = false;
			break;
		case 0x12: /* def_cfa_sf */
			row->cfa_reg = (unsigned)unwind_uleb(r);
			row->cfa_off = unwind_sleb(r) * r->data_align;
			row->cfa_expr = false;
			break;
		case 0x0d: /* def_cfa_register */
			row->cfa_reg = (unsigned)unwind_uleb(r);
			row->cfa_expr = false;
			break;
		case 0x0e: /* def_cfa_offset */
			row->cfa_off = (int64_t)unwind_uleb(r);
			break;
		case 0x13: /* def_cfa_offset_sf */
			row->cfa_off = unwind_sleb(r) * r->data_align;
			break;
		case 0x0f: /* def_cfa_expression */
			delta = unwind_uleb(r);
			if ((uint64_t)(r->end - r->p) < delta)
				return false;
			r->p += delta;
			row->cfa_expr = true;
			break;
		case 0x2e: /* GNU_args_size */
			unwind_uleb(r);
			break;
		default: /* set_loc, window_save, vendor extensions */
			return false;
		}
		continue;
	advance:
		loc += delta * r->code_align;
		if (loc > target)
			return !r->bad;
		continue;
	offset:
		if (reg == UNWIND_REG_RA) {
			row->ra_saved = true;
			row->ra_off = off;
		}
		continue;
	other:
		if (reg == UNWIND_REG_RA)
			row->ra_saved = false;
		continue;
	}
	return !r->bad;
}

/* The rule of the frame whose return address is ip (its call is at ip - 1): c if the
 * CFA is rsp + c with the return address at CFA - 8, else 0. */
static unsigned unwind_rule_compute(uint64_t ip)
{
	struct dwarf_eh_bases bases;
	uint64_t target = ip - 1;
	const uint8_t *fde = _Unwind_Find_FDE((void *)(uintptr_t)target, &bases);
	if (!fde)
		return 0;
	uint32_t len, cie_off, clen, cie_id;
	memcpy(&len, fde, 4);
	if (!len || len == 0xffffffffu)
		return 0;
	memcpy(&cie_off, fde + 4, 4);
	const uint8_t *cie = fde + 4 - cie_off;
	memcpy(&clen, cie, 4);
	memcpy(&cie_id, cie + 4, 4);
	if (!clen || clen == 0xffffffffu || cie_id != 0)
		return 0;

	unwind_cfi_t r = {.p = cie + 8, .end = cie + 4 + clen};
	uint8_t version = (uint8_t)unwind_fixed(&r, 1);
	const char *aug = (const char *)r.p;
	size_t auglen = strnlen(aug, (size_t)(r.end - r.p));
	if (r.bad || r.p + auglen >= r.end)
		return 0;
	r.p += auglen + 1;
	if (version >= 4)
		unwind_fixed(&r, 2); /* address and segment selector sizes */
	r.code_align = unwind_uleb(&r);
	r.data_align = unwind_sleb(&r);
	uint64_t ra_reg = version == 1 ? unwind_fixed(&r, 1) : unwind_uleb(&r);
	uint8_t fde_enc = 0;
	bool z = aug[0] == 'z';
	if (z) {
		uint64_t n = unwind_uleb(&r);
		if (r.bad || n > (uint64_t)(r.end - r.p))
			return 0;
		const uint8_t *aend = r.p + n;
		for (const char *a = aug + 1; *a && !r.bad; a++) {
			if (*a == 'R') {
				fde_enc = (uint8_t)unwind_fixed(&r, 1);
			} else if (*a == 'P') {
				uint8_t penc = (uint8_t)unwind_fixed(&r, 1);
				unwind_skip_ptr(&r, penc & 0x7f);
			} else if (*a == 'L') {
				unwind_fixed(&r, 1);
			} else {
				return 0; /* 'S' (a signal frame) or something unknown */
			}
		}
		r.p = aend;
	} else if (aug[0]) {
		return 0;
	}
	if (r.bad || ra_reg != UNWIND_REG_RA || !r.code_align)
		return 0;

	uint64_t func = (uint64_t)(uintptr_t)bases.func;
	unwind_row_t row = {.cfa_reg = ~0u}, init;
	if (!unwind_run(&r, func, target, &row, &row))
		return 0;
	init = row;

	unwind_cfi_t f = {.p = fde + 8, .end = fde + 4 + len, .code_align = r.code_align, .data_align = r.data_align};
	unwind_skip_ptr(&f, fde_enc); /* pc_begin: bases.func has it */
	unwind_skip_ptr(&f, fde_enc & 0x0f); /* pc_range */
	if (z) {
		uint64_t n = unwind_uleb(&f);
		if (f.bad || n > (uint64_t)(f.end - f.p))
			return 0;
		f.p += n;
	}
	if (f.bad || target < func || !unwind_run(&f, func, target, &row, &init))
		return 0;
	if (row.cfa_expr || row.cfa_reg != UNWIND_REG_RSP || !row.ra_saved || row.ra_off != -8 || row.cfa_off < 8 ||
	    row.cfa_off > 0xffff)
		return 0;
	return (unsigned)row.cfa_off;
}

static inline size_t unwind_hash(uint64_t x)
{
	return (size_t)((x * 0x9E3779B97F4A7C15ull) >> 40);
}

/* The rule for ip, from the table or computed (and then remembered). */
static unsigned unwind_rule(uint64_t ip)
{
	_Atomic uint64_t *tab = atomic_load_explicit(&unwind_rules, memory_order_acquire);
	if (mp_unlikely(!tab)) {
		_Atomic uint64_t *nt = mem_alloc(UNWIND_RULES * sizeof *nt), *expected = NULL;
		if (!nt)
			return 0;
		if (atomic_compare_exchange_strong(&unwind_rules, &expected, nt)) {
			tab = nt;
		} else {
			mem_free(nt);
			tab = expected;
		}
	}
	if (mp_unlikely(ip >> 48 || !ip))
		return 0;
	size_t i = unwind_hash(ip) & (UNWIND_RULES - 1);
	for (unsigned probes = 0; probes < 32; probes++, i = (i + 1) & (UNWIND_RULES - 1)) {
		uint64_t w = atomic_load_explicit(&tab[i], memory_order_relaxed);
		if (!w)
			break;
		if (w >> 16 == ip)
			return (unsigned)(w & 0xffff);
	}
	unsigned c = unwind_rule_compute(ip);
	if (atomic_load_explicit(&unwind_rules_n, memory_order_relaxed) >= UNWIND_RULES / 4 * 3)
		return c;
	uint64_t w = ip << 16 | c;
	i = unwind_hash(ip) & (UNWIND_RULES - 1);
	for (unsigned probes = 0; probes < 32; probes++, i = (i + 1) & (UNWIND_RULES - 1)) {
		uint64_t expected = 0;
		if (atomic_compare_exchange_strong(&tab[i], &expected, w)) {
			atomic_fetch_add_explicit(&unwind_rules_n, 1, memory_order_relaxed);
			break;
		}
		if (expected >> 16 == ip)
			break; /* another thread got there first */
	}
	return c;
}

/* ---- chains ------------------------------------------------------------------------- */

#define UNWIND_CACHE 128u /* chains per thread, direct-mapped on (ra, cfa) */

struct unwind_cache {
	unwind_chain_t e[UNWIND_CACHE];
};

/* Reads the stack words that hold the chain's return addresses (the thread's own stack,
 * above the hook's frame: outside any object a sanitizer tracks). */
__attribute__((no_sanitize_address)) static inline uint64_t unwind_word(uintptr_t a)
{
	return *(const uint64_t *)a;
}

static inline bool unwind_chain_holds(const unwind_chain_t *ch)
{
	for (unsigned i = 0; i < ch->n; i++)
		if (unwind_word(ch->cfa + ch->slot[i]) != ch->w[i + 1])
			return false;
	return true;
}

/* Unwinds from (ra, cfa) into ch; false if a frame is not one this unwinder follows, or
 * the chain is longer than it keeps. */
static bool unwind_fill(unwind_chain_t *ch, uintptr_t ra, uintptr_t cfa, uint64_t lo, uint64_t hi, unsigned max)
{
	uint64_t ip = ra, sp = cfa;
	unsigned n = 0, self = 0;
	ch->w[0] = ip;
	for (;;) {
		if (ip >= lo && ip < hi)
			break;
		if (n == self && native_is_self(ip))
			self++; /* memprof's own frames on top are walked, not recorded */
		if (n == UNWIND_CHAIN_MAX)
			return false;
		unsigned c = unwind_rule(ip);
		if (!c)
			return false;
		uint64_t next_cfa = sp + c;
		if (next_cfa - cfa > (1u << 20))
			return false;
		ch->slot[n] = (uint32_t)(next_cfa - 8 - cfa);
		ip = unwind_word(next_cfa - 8);
		ch->w[++n] = ip;
		sp = next_cfa;
		if (!ip)
			return false;
	}
	if (n - self > max)
		return false;
	ch->n = (uint16_t)n;
	ch->self = (uint16_t)self;
	return true;
}

const unwind_chain_t *unwind_chain(unwind_cache_t **cp, uintptr_t ra, uintptr_t cfa, uint64_t stop_lo,
				   uint64_t stop_hi, unsigned max)
{
	if (mp_unlikely(modules_generation() != 0))
		return NULL; /* a library was unloaded: libunwind from now on */
	if (unwind_word(cfa - 8) != ra)
		return NULL; /* not the hook's frame as this unwinder expects it */
	unwind_cache_t *c = *cp;
	if (mp_unlikely(!c) && !(c = *cp = mem_alloc(sizeof *c)))
		return NULL;
	unwind_chain_t *ch = &c->e[(size_t)((ra ^ (uint64_t)cfa * 0x9E3779B97F4A7C15ull) >> 57) & (UNWIND_CACHE - 1)];
	if (ch->ra == ra && ch->cfa == cfa && unwind_chain_holds(ch))
		return ch;
	ch->ra = 0;
	if (!unwind_fill(ch, ra, cfa, stop_lo, stop_hi, max))
		return NULL;
	ch->ra = ra;
	ch->cfa = cfa;
	ch->node = 0;
	ch->parent = 0;
	return ch;
}

void unwind_cache_free(unwind_cache_t *c)
{
	mem_free(c);
}
