/* A function whose debug info is a compilation unit that imports a partial unit which
 * imports itself twelve times (DW_TAG_imported_unit, DWARF 4): hostile or broken debug
 * info that a walk following imports without a cycle check would take 12^n steps on.
 * test_symbolize.c symbolizes an address in it: the symbolizer must answer at once from
 * the symbol table, as libdw (which refuses the cycle) let it before. */
	.text
	.globl test_symbolize_cyclic
	.type test_symbolize_cyclic,@function
test_symbolize_cyclic:
.Lcyc_lo:
	xorl %eax,%eax
	nop
	nop
	ret
.Lcyc_hi:
	.size test_symbolize_cyclic,.-test_symbolize_cyclic

	.section .debug_abbrev,"",@progbits
.Lcyc_abbrev:
	.uleb128 1	/* compile unit: name, low_pc, high_pc (length) */
	.uleb128 0x11
	.byte 1
	.uleb128 0x3
	.uleb128 0x8
	.uleb128 0x11
	.uleb128 0x1
	.uleb128 0x12
	.uleb128 0x7
	.byte 0,0
	.uleb128 2	/* imported unit: import (ref_addr) */
	.uleb128 0x3d
	.byte 0
	.uleb128 0x18
	.uleb128 0x10
	.byte 0,0
	.uleb128 3	/* partial unit, with children */
	.uleb128 0x3c
	.byte 1
	.byte 0,0
	.uleb128 4	/* subprogram: name, low_pc, high_pc (length) */
	.uleb128 0x2e
	.byte 0
	.uleb128 0x3
	.uleb128 0x8
	.uleb128 0x11
	.uleb128 0x1
	.uleb128 0x12
	.uleb128 0x7
	.byte 0,0
	.byte 0

	.section .debug_info,"",@progbits
	.long .Lcyc_cu_end-.Lcyc_cu
.Lcyc_cu:
	.value 4
	.long .Lcyc_abbrev
	.byte 8
	.uleb128 1
	.string "cyclic.c"
	.quad .Lcyc_lo
	.quad .Lcyc_hi-.Lcyc_lo
	.rept 12	/* imported unit: the partial unit, twelve times */
	.uleb128 2
	.long .Lcyc_pu
	.endr
	.uleb128 4
	.string "test_symbolize_cyclic_dwarf"
	.quad .Lcyc_lo
	.quad .Lcyc_hi-.Lcyc_lo
	.byte 0
.Lcyc_cu_end:
	.long .Lcyc_pu_end-.Lcyc_pu_start
.Lcyc_pu_start:
	.value 4
	.long .Lcyc_abbrev
	.byte 8
.Lcyc_pu:
	.uleb128 3
	.rept 12	/* imported unit: the partial unit, twelve times */
	.uleb128 2
	.long .Lcyc_pu
	.endr
	.byte 0
.Lcyc_pu_end:

	/* the unit's address range, so that the address is looked up in it */
	.section .debug_aranges,"",@progbits
	.long .Lcyc_ar_end-.Lcyc_ar
.Lcyc_ar:
	.value 2
	.long .Lcyc_cu-4
	.byte 8
	.byte 0
	.value 0,0
	.quad .Lcyc_lo
	.quad .Lcyc_hi-.Lcyc_lo
	.quad 0,0
.Lcyc_ar_end:

	.section .note.GNU-stack,"",@progbits
