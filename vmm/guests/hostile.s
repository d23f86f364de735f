# hostile.rom: a 64 KiB firmware image (-bios) that attacks the machine's address spaces.
# From the reset vector it enters 32-bit protected mode, copies itself to RAM at 0x10000
# and runs there (its own writes may move a BAR over the ROM), then for ITERATIONS rounds
# of a seeded xorshift generator makes random configuration writes (CF8/CFC and ECAM,
# every function of bus 0 and garbage on buses 1-2), port writes and reads, and MMIO
# writes and reads anywhere in 4 GiB, with interrupts off. After every round its own code
# and constants must be unchanged (verdict 68 names the access that changed them). At the
# end it turns decoding off on every function so that no BAR shadows its verdict port,
# and writes verdict 1. Anything else (an exception: 126) is a failure.
#
# Never touched, because a real machine would reset, stop or lose its own memory:
# [0, 2 MiB) (code, data, stack); 0xfec00000-0xfeefffff (IOAPIC, HPET, LAPIC: a write can
# INIT the CPU); ports 0x501-0x502 (the verdict), 0x64, 0x92 and 0xcf9 (reset), 0xb2-0xb3
# (SMI), 0x514-0x51b (fw_cfg DMA writes RAM), 0x7e-0x7f (QEMU's kvmvapic: a write patches
# guest code), 0x40-0x43 (the PIT: QEMU's has no minimum period, and a count of 1 starves
# the vCPU under TCG). Functions that can power the machine off or raise SMIs under QEMU
# (PIIX4 PM 8086:7113, ICH9 LPC 8086:2918) get no configuration access; busmap-vmm has
# neither. No write sets a command register's bus-master bit: a device's DMA (or MSI) to
# a random address could land in [0, 2 MiB). COM1 gets single bytes only: QEMU 7.2's
# 16550 asserts on wider accesses.

	.include "guest.inc"

	.equ LOW_LIMIT, 0x200000
	.equ APIC_LO, 0xfec00000
	.equ APIC_HI, 0xfef00000
	.equ MAX_FUNCS, 64
	.equ MAX_EXCLUDED, 8

	.ifndef ITERATIONS
	.equ ITERATIONS, 20000
	.endif
	.ifndef SEED
	.equ SEED, 0x2545f491
	.endif

# ---- main: 32-bit, in RAM (start32.s got it there) -----------------------------------------

	.text
	.globl guest_main
guest_main:
	PRINT "hostile: seed "
	movl $SEED, %eax
	call puthex32
	PRINT ", "
	movl $ITERATIONS, %eax
	call putdec
	PRINTLN " iterations"
	movl $SEED, rng

	call scan_bus0
	call image_sum
	movl %eax, image_sum0

	movl $ITERATIONS, iter_left
2:	cmpl $0, iter_left
	je 3f
	call one_op
	call image_sum
	cmpl image_sum0, %eax
	jne corrupted
	decl iter_left
	jmp 2b

3:	call quiesce
	call uart_init
	PRINTLN ""
	PRINT "hostile: done: config writes "
	movl n_cfgw, %eax
	call putdec
	PRINT " (ECAM "
	movl n_cfgw_ecam, %eax
	call putdec
	PRINT "), config reads "
	movl n_cfgr, %eax
	call putdec
	PRINT ", port writes "
	movl n_pio_w, %eax
	call putdec
	PRINT ", port reads "
	movl n_pio_r, %eax
	call putdec
	PRINT ", MMIO writes "
	movl n_mmio_w, %eax
	call putdec
	PRINT ", MMIO reads "
	movl n_mmio_r, %eax
	call putdec
	PRINT ", skipped "
	movl n_skipped, %eax
	call putdec
	call putnl
	PRINTLN "hostile: survived"
	movl $V_PASS, %eax
	jmp exit_verdict

# image_sum -> eax: the sum of the dwords of the program's code and constants. No access
# the program makes touches them, so a change means a write went where it was not sent.
image_sum:
	pushl %esi
	movl $_start, %esi
	xorl %eax, %eax
1:	addl (%esi), %eax
	addl $4, %esi
	cmpl $__image_const_end, %esi
	jb 1b
	popl %esi
	ret

corrupted:
	call uart_init
	PRINTLN ""
	PRINT "hostile: round "
	movl $ITERATIONS + 1, %eax
	subl iter_left, %eax
	call putdec
	PRINT " changed the program's own code or constants; its access: "
	movl last_op, %eax
	movl op_names(,%eax,4), %esi
	call puts
	PRINT " at "
	movl last_target, %eax
	call puthex32
	PRINT " register "
	movl last_reg, %eax
	call puthex32
	PRINT " size "
	movl last_size, %eax
	call putdec
	PRINT " value "
	movl last_value, %eax
	call puthex32
	call putnl
	FAIL 68, "a write reached memory it was not sent to"

# rand: xorshift32 -> eax.
rand:
	pushl %edx
	movl rng, %eax
	movl %eax, %edx
	shll $13, %edx
	xorl %edx, %eax
	movl %eax, %edx
	shrl $17, %edx
	xorl %edx, %eax
	movl %eax, %edx
	shll $5, %edx
	xorl %edx, %eax
	movl %eax, rng
	popl %edx
	ret

# rand_below: ecx = n > 0 -> eax uniform-ish in [0, n).
rand_below:
	pushl %edx
	call rand
	xorl %edx, %edx
	divl %ecx
	movl %edx, %eax
	popl %edx
	ret

# rand_size -> esi = 1, 2 or 4.
rand_size:
	pushl %eax
	pushl %ecx
	movl $3, %ecx
	call rand_below
	movl $1, %esi
	movb %al, %cl
	shll %cl, %esi
	popl %ecx
	popl %eax
	ret

# scan_bus0: functions present on bus 0 (through CF8), minus the excluded ones.
scan_bus0:
	pushal
	movb $0, cfg_method
	xorl %ebx, %ebx
1:	xorl %ecx, %ecx
	call cfg_read32
	cmpw $0xffff, %ax
	je 4f
	cmpl $0x71138086, %eax		# PIIX4 PM
	je 2f
	cmpl $0x29188086, %eax		# ICH9 LPC
	je 2f
	movl n_funcs, %edx
	cmpl $MAX_FUNCS, %edx
	jae 4f
	movl %ebx, funcs(,%edx,4)
	incl n_funcs
	PRINT "hostile: target "
	jmp 3f
2:	movl n_excluded, %edx
	cmpl $MAX_EXCLUDED, %edx
	jae 4f
	movl %ebx, excluded(,%edx,4)
	incl n_excluded
	PRINT "hostile: spared "
3:	call putbdf
	call putsp
	call puthex16
	movb $':', %al
	call putc
	shrl $16, %eax
	call puthex16
	call putnl
4:	incl %ebx
	cmpl $256, %ebx
	jb 1b
	popal
	ret

# is_excluded: ebx = bdf -> ZF set when no access may reach it.
is_excluded:
	pushl %ecx
	xorl %ecx, %ecx
1:	cmpl n_excluded, %ecx
	jae 2f
	cmpl excluded(,%ecx,4), %ebx
	je 3f
	incl %ecx
	jmp 1b
2:	orl $1, %ecx			# ZF clear
3:	popl %ecx
	ret

# pick_bdf -> ebx: mostly a function that exists, else anything on buses 0-2. CF set when
# the choice must be spared.
pick_bdf:
	pushl %eax
	pushl %ecx
	call rand
	testl $3, %eax
	jz 1f
	movl n_funcs, %ecx
	testl %ecx, %ecx
	jz 1f
	call rand_below
	movl funcs(,%eax,4), %ebx
	jmp 2f
1:	movl $3, %ecx
	call rand_below
	movl %eax, %ebx
	shll $8, %ebx
	call rand
	andl $0xff, %eax
	orl %eax, %ebx
2:	call is_excluded
	jz 3f
	popl %ecx
	popl %eax
	clc
	ret
3:	popl %ecx
	popl %eax
	stc
	ret

# rand_value: esi = size -> eax, biased towards what moves BARs: all ones (sizing),
# addresses in the 32-bit PCI window, small numbers (command bits), or anything.
rand_value:
	pushl %ecx
	call rand
	movl %eax, %ecx
	call rand
	andl $3, %ecx
	jz 1f
	cmpl $1, %ecx
	je 2f
	cmpl $2, %ecx
	je 3f
	jmp 4f
1:	movl $0xffffffff, %eax
	jmp 4f
2:	andl $0x00fff000, %eax
	orl $0xc0000000, %eax
	jmp 4f
3:	andl $7, %eax
4:	popl %ecx
	ret

# one_op: one random access of a random kind.
one_op:
	pushal
	call rand
	andl $7, %eax
	movl %eax, last_op
	movl $0, last_reg
	jmp *op_table(,%eax,4)

op_cfg_write_ecam:
	movb $1, cfg_method
	jmp 1f
op_cfg_write:
	movb $0, cfg_method
1:	call pick_bdf
	jc op_skip
	call rand
	movl %eax, %ecx
	testl $1, %ecx			# half of them at the command register and BARs
	jz 2f
	shrl $1, %ecx
	pushl %eax
	movl %ecx, %eax
	movl $0x24, %ecx
	xorl %edx, %edx
	divl %ecx
	leal 4(%edx), %ecx
	popl %eax
	jmp 3f
2:	shrl $1, %ecx
	andl $0xff, %ecx
	cmpb $0, cfg_method		# ECAM: a quarter reach the extended space
	je 3f
	testl $0x300, %eax
	jnz 3f
	shrl $8, %eax
	andl $0xfff, %eax
	movl %eax, %ecx
3:	call rand_size
	call rand_value
	call clear_bme
	cmpl $4, %esi
	jne 4f
	cmpl $0x10, %ecx		# remember BAR values: accesses aim near them
	jb 4f
	cmpl $0x27, %ecx
	ja 4f
	movl %eax, last_bar
4:	call note_cfg
	cmpl $1, %esi
	jne 5f
	call cfg_write8
	jmp 7f
5:	cmpl $2, %esi
	jne 6f
	call cfg_write16
	jmp 7f
6:	call cfg_write32
7:	incl n_cfgw
	cmpb $0, cfg_method
	je op_done
	incl n_cfgw_ecam
	jmp op_done

op_cfg_read:
	call rand
	andl $1, %eax
	movb %al, cfg_method
	call pick_bdf
	jc op_skip
	call rand
	andl $0xff, %eax
	movl %eax, %ecx
	call rand_size
	call note_cfg
	cmpl $1, %esi
	jne 1f
	call cfg_read8
	jmp 3f
1:	cmpl $2, %esi
	jne 2f
	call cfg_read16
	jmp 3f
2:	call cfg_read32
3:	incl n_cfgr
	jmp op_done

# pick_port -> edx: anywhere, near the last BAR value, or a port with a device behind it.
pick_port:
	pushl %eax
	call rand
	movl %eax, %edx
	testl $1, %eax
	jz 2f
	testl $2, %eax
	jz 1f
	shrl $16, %edx
	jmp 3f
1:	movl last_bar, %edx
	andl $0xfffc, %edx
	shrl $8, %eax
	andl $0xff, %eax
	addl %eax, %edx
	andl $0xffff, %edx
	jmp 3f
2:	shrl $8, %eax
	andl $15, %eax
	movzwl busy_ports(,%eax,2), %edx
3:	popl %eax
	ret

# narrow_uart: edx = port, esi = size -> esi = 1 when the access touches COM1, whose
# emulation in QEMU 7.2 asserts on wider accesses.
narrow_uart:
	cmpl $COM1 + 8, %edx
	jae 1f
	pushl %eax
	leal (%edx,%esi), %eax
	cmpl $COM1, %eax
	popl %eax
	jbe 1f
	movl $1, %esi
1:	ret

# port_allowed: edx = port, esi = size -> CF set when [port, port + size) touches a
# port that resets, stops or DMAs.
port_allowed:
	pushal
	movl %edx, %eax
	addl %esi, %eax			# end, exclusive
	xorl %ecx, %ecx
1:	cmpl $N_FORBIDDEN, %ecx
	jae 3f
	movzwl forbidden_lo(,%ecx,2), %ebx
	movzwl forbidden_end(,%ecx,2), %edi
	cmpl %edi, %edx			# port >= end of range: clear
	jae 2f
	cmpl %ebx, %eax			# our end <= start of range: clear
	jbe 2f
	popal
	stc
	ret
2:	incl %ecx
	jmp 1b
3:	popal
	clc
	ret

op_port_write:
	call pick_port
	call rand_size
	call narrow_uart
	call port_allowed
	jc op_skip
	call rand
	cmpl $0xcfc, %edx		# a write reaching the command register through CFC
	ja 1f
	leal (%edx,%esi), %ecx
	cmpl $0xcfc, %ecx
	jbe 1f
	pushl %eax
	pushl %edx
	movw $0xcf8, %dx
	inl %dx, %eax
	popl %edx
	andl $0xfc, %eax
	cmpl $4, %eax
	popl %eax
	jne 1f
	leal -0xcf8(%edx), %ecx		# the config offset port 0xcf8 + n would write
	call clear_bme
1:	call note_port
	cmpl $1, %esi
	jne 4f
	outb %al, %dx
	jmp 3f
4:	cmpl $2, %esi
	jne 2f
	outw %ax, %dx
	jmp 3f
2:	outl %eax, %dx
3:	incl n_pio_w
	jmp op_done

op_port_read:
	call pick_port
	call rand_size
	call narrow_uart
	call note_port
	cmpl $1, %esi
	jne 1f
	inb %dx, %al
	jmp 3f
1:	cmpl $2, %esi
	jne 2f
	inw %dx, %ax
	jmp 3f
2:	inl %dx, %eax
3:	incl n_pio_r
	jmp op_done

# pick_addr -> edi: anywhere in 4 GiB, in ECAM for buses 0-2, or near the last BAR value.
# CF set when [edi, edi + esi) must not be touched.
pick_addr:
	pushal
	call rand
	movl %eax, %ebx
	call rand
	movl %eax, %edi
	testl $1, %ebx
	jz 2f
	testl $2, %ebx
	jz 1f
	movl $3 << 20, %ecx		# ECAM, buses 0-2
	call rand_below
	leal ECAM_BASE(%eax), %edi
	jmp 2f
1:	movl last_bar, %edi
	andl $~0xf, %edi
	andl $0xfff, %eax
	addl %eax, %edi
2:	cmpl $LOW_LIMIT, %edi
	jb 8f
	movl %edi, %eax
	addl %esi, %eax			# end, exclusive; 0 when it ends at 4 GiB
	jc 3f
	cmpl $APIC_LO, %eax
	jbe 4f
3:	cmpl $APIC_HI, %edi
	jb 8f				# starts below APIC_HI and ends above APIC_LO
	testl %eax, %eax
	jz 4f
	cmpl %edi, %eax
	jb 8f				# wraps past 4 GiB
4:	movl %edi, %eax			# spare the excluded functions' ECAM pages
	subl $ECAM_BASE, %eax
	cmpl $0x10000000, %eax
	jae 5f
	shrl $12, %eax
	movl %eax, %ebx
	call is_excluded
	jz 8f
5:	movl %edi, (%esp)		# the saved edi of pushal
	popal
	clc
	ret
8:	popal
	stc
	ret

op_mmio_write:
	call rand_size
	call pick_addr
	jc op_skip
	call rand
	movl %edi, %ecx			# in ECAM: the register it writes
	subl $ECAM_BASE, %ecx
	cmpl $0x10000000, %ecx
	jae 1f
	andl $0xfff, %ecx
	call clear_bme
1:	call note_mmio
	cmpl $1, %esi
	jne 4f
	movb %al, (%edi)
	jmp 3f
4:	cmpl $2, %esi
	jne 2f
	movw %ax, (%edi)
	jmp 3f
2:	movl %eax, (%edi)
3:	incl n_mmio_w
	jmp op_done

op_mmio_read:
	call rand_size
	call pick_addr
	jc op_skip
	call note_mmio
	cmpl $1, %esi
	jne 1f
	movb (%edi), %al
	jmp 3f
1:	cmpl $2, %esi
	jne 2f
	movw (%edi), %ax
	jmp 3f
2:	movl (%edi), %eax
3:	incl n_mmio_r
	jmp op_done

# clear_bme: ecx = configuration offset of a write's first byte, esi = its size, eax =
# its value -> eax without the bus-master bit when the write covers the command register.
clear_bme:
	pushl %ecx
	cmpl $4, %ecx
	ja 1f
	negl %ecx
	addl $4, %ecx			# the command register's byte within the value
	cmpl %esi, %ecx
	jae 1f
	shll $3, %ecx
	addl $2, %ecx
	btrl %ecx, %eax
1:	popl %ecx
	ret

# note_cfg / note_port / note_mmio: remember the access about to be made (ebx = bdf and
# ecx = register, edx = port, or edi = address; esi = size, eax = value) for the report
# should it change the program.
note_cfg:
	movl %ebx, last_target
	movl %ecx, last_reg
	jmp 1f
note_port:
	movl %edx, last_target
	jmp 1f
note_mmio:
	movl %edi, last_target
1:	movl %esi, last_size
	movl %eax, last_value
	ret

op_skip:
	incl n_skipped
op_done:
	popal
	ret

# quiesce: decoding off on every function but bridges, through both mechanisms, so no
# BAR shadows the UART or the verdict port any more.
quiesce:
	pushal
	movb $0, cfg_method
1:	xorl %esi, %esi
2:	cmpl n_funcs, %esi
	jae 4f
	movl funcs(,%esi,4), %ebx
	movl $0x0b, %ecx
	call cfg_read8
	cmpb $0x06, %al
	je 3f
	movl $4, %ecx
	xorl %eax, %eax
	call cfg_write16
3:	incl %esi
	jmp 2b
4:	cmpb $0, cfg_method
	jne 5f
	movb $1, cfg_method
	jmp 1b
5:	movb $0, cfg_method
	popal
	ret

	.section .rodata
	.balign 4
op_table:
	.long op_cfg_write, op_cfg_write, op_cfg_write_ecam, op_cfg_read
	.long op_port_write, op_port_read, op_mmio_write, op_mmio_read
op_names:
	.long .Lop_cfgw, .Lop_cfgw, .Lop_ecamw, .Lop_cfgr
	.long .Lop_piow, .Lop_pior, .Lop_mmiow, .Lop_mmior
.Lop_cfgw:	.asciz "config write through CF8/CFC"
.Lop_ecamw:	.asciz "config write through ECAM"
.Lop_cfgr:	.asciz "config read"
.Lop_piow:	.asciz "port write"
.Lop_pior:	.asciz "port read"
.Lop_mmiow:	.asciz "MMIO write"
.Lop_mmior:	.asciz "MMIO read"
	.balign 2
busy_ports:
	.word 0x20, 0x21, 0x4d0, 0x4d1, 0x61, 0x70, 0x71, 0xa0
	.word 0x3f8, 0x3f9, 0x3fb, 0x3fc, 0x402, 0x510, 0xcfc, 0xcfe
	.equ N_FORBIDDEN, 8
forbidden_lo:
	.word 0x40, 0x64, 0x7e, 0x92, 0xb2, 0x501, 0x514, 0xcf9
forbidden_end:
	.word 0x44, 0x65, 0x80, 0x93, 0xb4, 0x503, 0x51c, 0xcfa

	.data
	.balign 4
rng:		.long 0
iter_left:	.long 0
last_bar:	.long 0xc0000000
n_funcs:	.long 0
funcs:		.fill MAX_FUNCS, 4, 0
n_excluded:	.long 0
excluded:	.fill MAX_EXCLUDED, 4, 0
n_cfgw:		.long 0
n_cfgw_ecam:	.long 0
n_cfgr:		.long 0
n_pio_w:	.long 0
n_pio_r:	.long 0
n_mmio_w:	.long 0
n_mmio_r:	.long 0
n_skipped:	.long 0
image_sum0:	.long 0
last_op:	.long 0
last_target:	.long 0
last_reg:	.long 0
last_size:	.long 0
last_value:	.long 0
