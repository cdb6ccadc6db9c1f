/* memprof's own unwinder for native and mixed stacks (see unwind.h). */
#define _GNU_SOURCE
#include "unwind.h"
#include "mem.h"
#include "modules.h"
#include "mp.h"
#include "native.h"
#include "stack.h"

#include <memprof/format.h>

#include <dlfcn.h>
#include <libunwind.h>
#include <stdio.h>
#include <string.h>

bool unwind_check;
atomic_ulong unwind_checked, unwind_answered, unwind_differed, unwind_filled;

/* ---- the CFA rule of an instruction pointer ------------------------------------------- */

/* A frame's rule, as memprof's unwinder follows it (0: a frame it does not follow):
 *   bits 0-15  c: the CFA is (rsp or rbp) + c, the return address at CFA - 8
 *   bit 16     the CFA's base is rbp (a frame pointer), else rsp
 *   bit 17     the caller's rbp is saved at CFA + 8 * (bits 18-25, signed); else the
 *              frame leaves rbp as it found it
 * or UNWIND_END: the outermost frame (its return address is undefined). */
#define UNWIND_RULE_BP (1u << 16)
#define UNWIND_RULE_BP_SAVED (1u << 17)
#define UNWIND_END (1u << 30)

static inline unsigned unwind_rule_cfa_off(unsigned r)
{
	return r & 0xffff;
}

static inline int64_t unwind_rule_bp_off(unsigned r)
{
	return (int64_t)(int8_t)(uint8_t)(r >> 18) * 8;
}

/* Rules found so far: open addressing on the instruction pointer. An entry is claimed
 * with a compare-and-swap of its key to ip | UNWIND_PENDING, its rule stored, then its
 * key to ip (release): readers take an entry only once its key is ip, and need no lock.
 * Entries are never removed; a full table (3/4) stops learning: instruction pointers
 * it does not know then get rule 0 (libunwind's). */
#define UNWIND_RULES 8192u
#define UNWIND_PENDING (1ull << 63)
typedef struct unwind_rules {
	_Atomic uint64_t key[UNWIND_RULES];
	uint32_t rule[UNWIND_RULES];
} unwind_rules_t;
static unwind_rules_t *unwind_rules;
static atomic_uint unwind_rules_n;

/* DWARF register numbers on x86-64. */
#define UNWIND_REG_RBP 6
#define UNWIND_REG_RSP 7
#define UNWIND_REG_RA 16

typedef struct unwind_row {
	int64_t cfa_off;
	unsigned cfa_reg;
	bool cfa_expr;
	bool ra_saved; /* the return address is saved at CFA + ra_off */
	bool ra_undefined; /* the outermost frame (_start, a thread's start in clone) */
	int64_t ra_off;
	bool bp_saved, bp_other; /* rbp saved at CFA + bp_off; another rule than that or none */
	int64_t bp_off;
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

/* v times the data alignment factor (a corrupt factor or operand marks the reader bad). */
static int64_t unwind_scaled(unwind_cfi_t *r, int64_t v)
{
	int64_t out;
	if (__builtin_mul_overflow(v, r->data_align, &out) || out < -(1ll << 40) || out > (1ll << 40)) {
		r->bad = true;
		return 0;
	}
	return out;
}

static int64_t unwind_uleb_scaled(unwind_cfi_t *r)
{
	uint64_t v = unwind_uleb(r);
	if (v > (1ull << 40)) {
		r->bad = true;
		return 0;
	}
	return unwind_scaled(r, (int64_t)v);
}

/* The datum of an encoded pointer (DW_EH_PE_*), sign-extended where it is signed; an
 * unknown format or an aligned pointer marks the reader bad. */
static uint64_t unwind_datum(unwind_cfi_t *r, uint8_t enc)
{
	if ((enc & 0x70) == 0x50) { /* aligned */
		r->bad = true;
		return 0;
	}
	switch (enc & 0x0f) {
	case 0x00: /* absptr */
	case 0x04: /* udata8 */
	case 0x0c: /* sdata8 */
		return unwind_fixed(r, 8);
	case 0x02: /* udata2 */
		return unwind_fixed(r, 2);
	case 0x0a: /* sdata2 */
		return (uint64_t)(int64_t)(int16_t)(uint16_t)unwind_fixed(r, 2);
	case 0x03: /* udata4 */
		return unwind_fixed(r, 4);
	case 0x0b: /* sdata4 */
		return (uint64_t)(int64_t)(int32_t)(uint32_t)unwind_fixed(r, 4);
	case 0x01: /* uleb128 */
		return unwind_uleb(r);
	case 0x09: /* sleb128 */
		return (uint64_t)unwind_sleb(r);
	default:
		r->bad = true;
		return 0;
	}
}

/* Skips an encoded pointer whose value is not needed. */
static void unwind_skip_ptr(unwind_cfi_t *r, uint8_t enc)
{
	if (enc != 0xff) /* DW_EH_PE_omit */
		unwind_datum(r, enc);
}

/* Reads a pointer encoded absolute or pc-relative (what compilers emit for .eh_frame
 * and .eh_frame_hdr); any other application marks the reader bad. */
static uint64_t unwind_read_ptr(unwind_cfi_t *r, uint8_t enc)
{
	const uint8_t *at = r->p;
	uint64_t v = unwind_datum(r, enc);
	switch (enc & 0x70) {
	case 0x00:
		return v;
	case 0x10: /* pcrel */
		return (uint64_t)(uintptr_t)at + v;
	default:
		r->bad = true;
		return 0;
	}
}

/* The FDE that covers pc, from the binary-search table of its object's .eh_frame_hdr
 * (found with _dl_find_object: no lock, nothing allocated; libgcc's _Unwind_Find_FDE
 * takes a mutex that a program registering unwind information of its own, a JIT's,
 * holds while it allocates, which then comes here). Only objects the loader mapped,
 * as libunwind sees them; *func is the FDE's first address. */
static const uint8_t *unwind_find_fde(uint64_t pc, uint64_t *func)
{
	struct dl_find_object fo;
	if (_dl_find_object((void *)(uintptr_t)pc, &fo) != 0 || !fo.dlfo_eh_frame)
		return NULL;
	const uint8_t *hdr = fo.dlfo_eh_frame;
	/* version 1; the table as (initial location, FDE address) pairs of 4-byte signed
	 * offsets from the header (DW_EH_PE_datarel | DW_EH_PE_sdata4), as every linker
	 * writes it */
	if (hdr[0] != 1 || hdr[3] != 0x3b)
		return NULL;
	unwind_cfi_t r = {.p = hdr + 4, .end = hdr + 4 + 16};
	unwind_read_ptr(&r, hdr[1]); /* .eh_frame's address */
	uint64_t count = hdr[2] == 0x03 || hdr[2] == 0x0b ? unwind_fixed(&r, 4) : 0;
	if (r.bad || !count)
		return NULL;
	const uint8_t *table = r.p;
	int64_t rel = (int64_t)(pc - (uint64_t)(uintptr_t)hdr);
	size_t lo = 0, hi = count; /* the last entry whose location is <= pc */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		int32_t loc;
		memcpy(&loc, table + mid * 8, 4);
		if (loc <= rel)
			lo = mid;
		else
			hi = mid;
	}
	int32_t loc, off;
	memcpy(&loc, table + lo * 8, 4);
	memcpy(&off, table + lo * 8 + 4, 4);
	if (loc > rel)
		return NULL;
	*func = (uint64_t)(uintptr_t)hdr + (uint64_t)(int64_t)loc;
	return hdr + off;
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
			reg = op & 0x3f;
			off = unwind_uleb_scaled(r);
			goto offset;
		case 3: /* restore */
			reg = op & 0x3f;
			goto restore;
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
			off = unwind_uleb_scaled(r);
			goto offset;
		case 0x11: /* offset_extended_sf */
			reg = unwind_uleb(r);
			off = unwind_scaled(r, unwind_sleb(r));
			goto offset;
		case 0x2f: /* GNU_negative_offset_extended */
			reg = unwind_uleb(r);
			off = -unwind_uleb_scaled(r);
			goto offset;
		case 0x06: /* restore_extended */
			reg = unwind_uleb(r);
			goto restore;
		case 0x07: /* undefined */
			reg = unwind_uleb(r);
			if (reg == UNWIND_REG_RA) {
				row->ra_saved = false;
				row->ra_undefined = true;
				break;
			}
			goto other;
		case 0x08: /* same_value */
			reg = unwind_uleb(r);
			if (reg == UNWIND_REG_RBP) {
				row->bp_saved = row->bp_other = false;
				break;
			}
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
			row->cfa_off = unwind_scaled(r, unwind_sleb(r));
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
			row->cfa_off = unwind_scaled(r, unwind_sleb(r));
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
			row->ra_undefined = false;
			row->ra_off = off;
		} else if (reg == UNWIND_REG_RBP) {
			row->bp_saved = true;
			row->bp_other = false;
			row->bp_off = off;
		}
		continue;
	restore:
		if (reg == UNWIND_REG_RA) {
			row->ra_saved = init->ra_saved;
			row->ra_undefined = init->ra_undefined;
			row->ra_off = init->ra_off;
		} else if (reg == UNWIND_REG_RBP) {
			row->bp_saved = init->bp_saved;
			row->bp_other = init->bp_other;
			row->bp_off = init->bp_off;
		}
		continue;
	other:
		if (reg == UNWIND_REG_RA)
			row->ra_saved = row->ra_undefined = false;
		else if (reg == UNWIND_REG_RBP)
			row->bp_saved = false, row->bp_other = true;
		continue;
	}
	return !r->bad;
}

/* The rule of the frame whose return address is ip (its call is at ip - 1), read from
 * its FDE (see above). */
static unsigned unwind_rule_compute(uint64_t ip)
{
	uint64_t target = ip - 1, func;
	const uint8_t *fde = unwind_find_fde(target, &func);
	if (!fde)
		return 0;
	uint32_t len, cie_off, clen, cie_id;
	memcpy(&len, fde, 4);
	if (len < 12 || len == 0xffffffffu)
		return 0;
	memcpy(&cie_off, fde + 4, 4);
	const uint8_t *cie = fde + 4 - cie_off;
	memcpy(&clen, cie, 4);
	memcpy(&cie_id, cie + 4, 4);
	if (clen < 8 || clen == 0xffffffffu || cie_id != 0)
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

	unwind_row_t row = {.cfa_reg = ~0u}, init;
	if (!unwind_run(&r, func, target, &row, &row))
		return 0;
	init = row;

	unwind_cfi_t f = {.p = fde + 8, .end = fde + 4 + len, .code_align = r.code_align, .data_align = r.data_align};
	uint64_t pc_begin = unwind_read_ptr(&f, fde_enc);
	uint64_t pc_range = unwind_read_ptr(&f, fde_enc & 0x0f);
	if (f.bad || pc_begin != func || target - pc_begin >= pc_range)
		return 0; /* not the FDE the table said, or pc is past its end */
	if (z) {
		uint64_t n = unwind_uleb(&f);
		if (f.bad || n > (uint64_t)(f.end - f.p))
			return 0;
		f.p += n;
	}
	if (f.bad || target < func || !unwind_run(&f, func, target, &row, &init))
		return 0;
	if (row.ra_undefined)
		return UNWIND_END;
	if (row.cfa_expr || (row.cfa_reg != UNWIND_REG_RSP && row.cfa_reg != UNWIND_REG_RBP) || !row.ra_saved ||
	    row.ra_off != -8 || row.cfa_off < 0 || row.cfa_off > 0xffff || row.bp_other)
		return 0;
	unsigned rule = (unsigned)row.cfa_off | (row.cfa_reg == UNWIND_REG_RBP ? UNWIND_RULE_BP : 0);
	if (row.bp_saved) {
		if (row.bp_off % 8 || row.bp_off < -1024 || row.bp_off > 1016)
			return 0;
		rule |= UNWIND_RULE_BP_SAVED | (unsigned)(uint8_t)(int8_t)(row.bp_off / 8) << 18;
	}
	return rule;
}

static inline size_t unwind_hash(uint64_t x)
{
	return (size_t)((x * 0x9E3779B97F4A7C15ull) >> 40);
}

/* The rule for ip, from the table or computed (and then remembered). */
static unsigned unwind_rule(uint64_t ip)
{
	unwind_rules_t *tab = unwind_rules;
	if (mp_unlikely(ip >> 62 || !ip))
		return 0;
	size_t i = unwind_hash(ip) & (UNWIND_RULES - 1);
	for (unsigned probes = 0; probes < 32; probes++, i = (i + 1) & (UNWIND_RULES - 1)) {
		uint64_t k = atomic_load_explicit(&tab->key[i], memory_order_acquire);
		if (!k)
			break;
		if (k == ip)
			return tab->rule[i];
	}
	/* a full table stops learning: new instruction pointers go to libunwind rather than
	 * being parsed again on every miss */
	if (atomic_load_explicit(&unwind_rules_n, memory_order_relaxed) >= UNWIND_RULES / 4 * 3)
		return 0;
	unsigned rule = unwind_rule_compute(ip);
	i = unwind_hash(ip) & (UNWIND_RULES - 1);
	for (unsigned probes = 0; probes < 32; probes++, i = (i + 1) & (UNWIND_RULES - 1)) {
		uint64_t expected = 0;
		if (atomic_compare_exchange_strong(&tab->key[i], &expected, ip | UNWIND_PENDING)) {
			tab->rule[i] = rule;
			atomic_store_explicit(&tab->key[i], ip, memory_order_release);
			atomic_fetch_add_explicit(&unwind_rules_n, 1, memory_order_relaxed);
			break;
		}
		if ((expected & ~UNWIND_PENDING) == ip)
			break; /* another thread got there first */
	}
	return rule;
}

/* ---- chains ------------------------------------------------------------------------- */

/* Chains per thread (unwind.h says how they are kept). */
#define UNWIND_REFUSE_FOR 64u

atomic_bool unwind_off;
static unsigned long long unwind_unloads0;

/* Unwinds from (ra, cfa, bp) into ch; false if a frame is not one this unwinder
 * follows, or the chain is longer than it keeps. */
static bool unwind_fill(unwind_chain_t *ch, uintptr_t ra, uintptr_t cfa, uintptr_t bp, uint64_t lo, uint64_t hi,
			unsigned max)
{
	uint64_t ip = ra, sp = cfa;
	unsigned n = 0, self = 0, end;
	int bp_from = -1;   /* the frame whose saved rbp rbp holds; -1: still the caller's (the key's bp) */
	uint32_t bp_used = 0; /* frames whose saved rbp a later frame's CFA was computed from */
	_Static_assert(UNWIND_CHAIN_MAX <= 32, "bp_used has a bit per frame");
	ch->keyed_bp = ch->bp_reads = false;
	ch->w[0] = ip;
	for (;;) {
		if (ip >= lo && ip < hi) {
			end = n; /* the eval loop: not recorded */
			break;
		}
		if (n == self && native_is_self(ip))
			self++; /* memprof's own frames on top are walked, not recorded */
		unsigned r = unwind_rule(ip);
		if (r == UNWIND_END && lo == hi) {
			end = n + 1; /* the outermost frame, recorded as libunwind does */
			break;
		}
		if (!r || r == UNWIND_END || n == UNWIND_CHAIN_MAX)
			return false;
		uint64_t base = sp;
		if (r & UNWIND_RULE_BP) {
			base = bp;
			if (bp_from < 0)
				ch->keyed_bp = true;
			else
				bp_used |= 1u << bp_from;
		}
		uint64_t next_cfa = base + unwind_rule_cfa_off(r);
		if (next_cfa <= sp || next_cfa - cfa > (1u << 20))
			return false;
		ch->bpslot[n] = UNWIND_NO_BP;
		if (r & UNWIND_RULE_BP_SAVED) {
			uint64_t a = next_cfa + (uint64_t)unwind_rule_bp_off(r);
			if (a < sp || a >= next_cfa)
				return false;
			ch->bpslot[n] = (uint32_t)(a - cfa);
			ch->bpval[n] = bp = unwind_word(a);
			bp_from = (int)n;
		}
		ch->slot[n] = (uint32_t)(next_cfa - 8 - cfa);
		ip = unwind_word(next_cfa - 8);
		ch->w[++n] = ip;
		sp = next_cfa;
		if (!ip)
			return false;
	}
	if (end - self > max)
		return false;
	/* a saved rbp no CFA was computed from (rbp used as a register of its own, as code
	 * built without frame pointers does) is no part of the chain: not checked */
	for (unsigned i = 0; i < n; i++)
		if (!(bp_used & (1u << i)))
			ch->bpslot[i] = UNWIND_NO_BP;
	ch->bp_reads = bp_used != 0;
	ch->n = (uint16_t)n;
	ch->self = (uint16_t)self;
	ch->end = (uint16_t)end;
	return true;
}

/* Puts chain e first in a set's ways (most recently used first), in place of way i. */
static inline void unwind_way_front(uint8_t *ways, unsigned i, uint8_t e)
{
	for (; i > 0; i--)
		ways[i] = ways[i - 1];
	ways[0] = e;
}

/* unwind_chain's miss: a key refused lately, or a chain to unwind into the spare entry,
 * which then takes the least recently used way of the set. */
static __attribute__((noinline)) const unwind_chain_t *unwind_chain_miss(unwind_cache_t *c, uint8_t *ways,
									   uint64_t h, uintptr_t ra, uintptr_t cfa,
									   uintptr_t bp, uint64_t stop_lo,
									   uint64_t stop_hi, unsigned max)
{
	bool whole = stop_lo == stop_hi;
	unwind_refusal_t *no = &c->refused[(size_t)(h >> 32) & (UNWIND_REFUSALS - 1)];
	if (no->left && no->ra == ra && no->cfa == cfa && no->whole == whole) {
		no->left--;
		return NULL;
	}
	unwind_chain_t *ch = &c->e[c->spare];
	if (!unwind_fill(ch, ra, cfa, bp, stop_lo, stop_hi, max)) {
		*no = (unwind_refusal_t){ra, cfa, UNWIND_REFUSE_FOR, whole};
		return NULL;
	}
	if (mp_unlikely(unwind_check))
		atomic_fetch_add(&unwind_filled, 1);
	ch->ra = ra;
	ch->cfa = cfa;
	ch->bp = bp;
	ch->whole = whole;
	memset(ch->node, 0, sizeof ch->node);
	ch->chain = 0;
	/* the spare chain takes the least recently used way; the chain that way held is the
	 * spare now */
	uint8_t old = ways[UNWIND_WAYS - 1];
	unwind_way_front(ways, UNWIND_WAYS - 1, c->spare);
	c->spare = old;
	return ch;
}

const unwind_chain_t *unwind_chain_lookup(unwind_cache_t *c, uintptr_t ra, uintptr_t fp, uint64_t stop_lo,
					  uint64_t stop_hi, unsigned max)
{
	if (mp_unlikely(!c || modules_generation() != 0 || atomic_load_explicit(&unwind_off, memory_order_relaxed)))
		return NULL; /* a library was unloaded: libunwind from now on */
	/* the hook's frame: [fp] the caller's rbp, [fp + 8] the return address, its CFA
	 * above them */
	uintptr_t cfa = fp + 16, bp = unwind_word(fp);
	if (unwind_word(fp + 8) != ra)
		return NULL; /* not the hook's frame as this unwinder expects it */
	bool whole = stop_lo == stop_hi;
	uint64_t h = unwind_key_hash(ra, cfa, whole);
	size_t set = unwind_set(h);
	uint8_t *ways = &c->way[set * UNWIND_WAYS];
	for (unsigned i = 0; i < UNWIND_WAYS; i++) {
		unwind_chain_t *ch = &c->e[ways[i]];
		if (ch->ra == ra && ch->cfa == cfa && ch->whole == whole && (!ch->keyed_bp || ch->bp == bp) &&
		    unwind_chain_holds(ch)) {
			unwind_way_front(ways, i, ways[i]);
			return ch;
		}
	}
	return unwind_chain_miss(c, ways, h, ra, cfa, bp, stop_lo, stop_hi, max);
}

/* Puts (parent, node) first in the chain's memo, in place of entry i. */
static void unwind_memo_front(unwind_chain_t *m, unsigned i, uint32_t parent, uint32_t node)
{
	for (; i > 0; i--) {
		m->parent[i] = m->parent[i - 1];
		m->node[i] = m->node[i - 1];
	}
	m->parent[0] = parent;
	m->node[0] = node;
}

/* The chain's frames interned below node `below`. */
static uint32_t unwind_intern(const unwind_chain_t *ch, stack_cache_t *sc, uint32_t below)
{
	uint64_t ips[UNWIND_CHAIN_MAX + 1];
	unsigned k = ch->end - ch->self;
	memcpy(ips, &ch->w[ch->self], k * sizeof *ips);
	return native_intern(sc, below, ips, k, false);
}

uint32_t unwind_chain_node_lookup(const unwind_chain_t *ch, stack_cache_t *sc, uint32_t parent)
{
	unwind_chain_t *m = (unwind_chain_t *)ch; /* the memo is the cache's own */
	for (unsigned i = 0; i < UNWIND_MEMO; i++)
		if (ch->parent[i] == parent && ch->node[i]) {
			uint32_t node = ch->node[i];
			unwind_memo_front(m, i, parent, node);
			return node;
		}
	if (ch->end == ch->self)
		return parent;
	uint32_t node;
	if (!parent) {
		node = unwind_intern(ch, sc, 0); /* a whole native stack: its frames, from the root */
	} else {
		/* below Python frames: the chain interned once, spliced below each parent */
		if (!ch->chain) {
			uint32_t chains = stack_child(sc, 0, MP_FRAME_CHAINS);
			m->chain = chains ? unwind_intern(ch, sc, chains) : 0;
		}
		node = ch->chain ? stack_child(sc, parent, mp_frame_splice(ch->chain)) : 0;
	}
	if (node)
		unwind_memo_front(m, UNWIND_MEMO - 1, parent, node);
	return node;
}

void unwind_check_chain(const unwind_chain_t *ch, const uint64_t *ips, unsigned n, bool cut)
{
	atomic_fetch_add(&unwind_checked, 1);
	if (!ch)
		return;
	atomic_fetch_add(&unwind_answered, 1);
	unsigned k = ch->end - ch->self;
	if (!cut && k == n && !memcmp(&ch->w[ch->self], ips, n * sizeof *ips))
		return;
	/* the first few in full, to tell what differed */
	if (atomic_fetch_add(&unwind_differed, 1) < 3) {
		char a[600], b[600];
		size_t ka = 0, kb = 0;
		for (unsigned i = 0; i < k && ka < sizeof a - 20; i++)
			ka += (size_t)snprintf(a + ka, sizeof a - ka, " %#llx", (unsigned long long)ch->w[ch->self + i]);
		for (unsigned i = 0; i < n && kb < sizeof b - 20; i++)
			kb += (size_t)snprintf(b + kb, sizeof b - kb, " %#llx", (unsigned long long)ips[i]);
		a[ka] = b[kb] = 0;
		mp_log("unwinder check: memprof's unwinder:%s; libunwind%s:%s", a, cut ? " (cut)" : "", b);
	}
}

/* Threads with a chain cache at once: the rest use libunwind (a program of a thousand
 * threads would otherwise give memprof 100 MB of caches). */
#define UNWIND_MAX_CACHES 64
static atomic_int unwind_caches;

int unwind_init(void)
{
	/* libunwind sets itself up (its caches, mapped) on its first unwind: let that happen
	 * now too, as it did when libunwind unwound the first stack, and not when this
	 * unwinder first passes a stack on to it (after a dlclose, say, when the mapping
	 * would take the place of the library just unloaded) */
	void *ips[4];
	unw_backtrace(ips, 4);
	unwind_unloads0 = modules_unloads();
	atomic_store(&unwind_caches, 0); /* a forked child: its parent's threads are gone */
	if (!unwind_rules) /* a forked child keeps its parent's: the same objects */
		unwind_rules = mem_alloc(sizeof *unwind_rules);
	return unwind_rules ? 0 : -1;
}

void unwind_unloads_seen(unsigned long long unloads)
{
	if (unwind_rules && unloads != unwind_unloads0)
		atomic_store_explicit(&unwind_off, true, memory_order_relaxed);
}

unwind_cache_t *unwind_cache_new(void)
{
	if (!unwind_rules || atomic_fetch_add(&unwind_caches, 1) >= UNWIND_MAX_CACHES) {
		if (unwind_rules)
			atomic_fetch_sub(&unwind_caches, 1);
		return NULL;
	}
	unwind_cache_t *c = mem_alloc(sizeof *c);
	if (!c)
		atomic_fetch_sub(&unwind_caches, 1);
	if (c) {
		for (unsigned i = 0; i < UNWIND_CACHE; i++)
			c->way[i] = (uint8_t)i;
		c->spare = UNWIND_CACHE;
	}
	return c;
}

void unwind_cache_free(unwind_cache_t *c)
{
	if (c) {
		mem_free(c);
		atomic_fetch_sub(&unwind_caches, 1);
	}
}
