# Stage 2 of bootdisk.img, loaded at 0x8000 by the boot sector. In real mode it reads the
# pattern sectors through int 13h (CHS and extended reads); in 32-bit protected mode it
# checks them, then walks PCI bus 0 through CF8/CFC and again through ECAM, sizes every
# BAR, and checks that virtio-blk, virtio-net and pci-testdev answer at the addresses
# their BARs decode to. Verdict codes: README.md (1 = pass).

	.include "guest.inc"

	.equ STAGE2_MAGIC, 0x32534d42	# "BMS2"
	.equ PAT_MAGIC, 0x54504d42	# "BMPT", second dword of every pattern sector
	.equ AREA_A, 0x20000		# pattern area A is read here (at most 64 sectors)
	.equ AREA_B, 0x28000		# area B, the last sectors of the disk (at most 32)

	# The boot sector's disk information block stays in memory at 0x7c00 + 0x1a0.
	.equ INFO, 0x7da0
	.equ INFO_TOTAL, INFO + 4
	.equ INFO_PAT_A_LBA, INFO + 12
	.equ INFO_PAT_A_COUNT, INFO + 14
	.equ INFO_PAT_B_COUNT, INFO + 16
	.equ INFO_FLAGS, INFO + 18
	.equ FLAG_ECAM_REQUIRED, 1

	.equ MAX_DECODED, 64		# decoded BARs remembered for the overlap check

	.equ ID_VIRTIO_BLK, 0x10011af4
	.equ ID_VIRTIO_NET, 0x10001af4
	.equ ID_TESTDEV, 0x00051b36

# ======================================================================================
# Real mode: disk reads through the BIOS
# ======================================================================================

	.code16
	.section .entry, "ax"
	.globl _start
_start:
	.long STAGE2_MAGIC
entry16:
	movb %dl, drive
	movw $msg_stage2, %si
	call puts16

	movb $0x08, %ah
	movb drive, %dl
	xorw %di, %di
	movw %di, %es
	int $0x13
	movb $7, %al
	jc fail16
	andw $0x3f, %cx
	jz fail16
	movzwl %cx, %ecx
	movl %ecx, spt
	movzbl %dh, %eax
	incl %eax
	movl %eax, heads

	movb $0x41, %ah
	movw $0x55aa, %bx
	movb drive, %dl
	int $0x13
	movb $6, %al
	jc fail16
	cmpw $0xaa55, %bx
	jne fail16
	testw $1, %cx			# packet (AH=42h) access
	jz fail16

	# Area A: its first half through CHS reads (split where a track ends), the rest
	# through extended reads; area B, the end of the disk, through extended reads.
	movw $msg_chs, %si
	call puts16
	movzwl INFO_PAT_A_LBA, %ebp
	movzwl INFO_PAT_A_COUNT, %ecx
	shrl $1, %ecx
	movl $AREA_A, %edi
	call chs_read

	movw $msg_ext, %si
	call puts16
	movzwl INFO_PAT_A_COUNT, %eax
	movzwl INFO_PAT_A_COUNT, %ecx
	shrl $1, %ecx
	subl %ecx, %eax			# the second half
	xchgl %eax, %ecx
	movl %eax, %edx
	movzwl INFO_PAT_A_LBA, %ebp
	addl %edx, %ebp
	shll $9, %edx
	movl $AREA_A, %edi
	addl %edx, %edi
	call ext_read

	movl INFO_TOTAL, %ebp
	movzwl INFO_PAT_B_COUNT, %ecx
	subl %ecx, %ebp
	movl $AREA_B, %edi
	call ext_read

	cli
	lgdtl gdt_desc
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $pm32

# chs_read: ebp = LBA, ecx = sectors, edi = linear buffer (below 1 MiB). int 13h AH=02h,
# as many sectors per call as fit before the end of a track.
chs_read:
	pushal
1:	testl %ecx, %ecx
	jz 3f
	movl %ebp, %eax
	xorl %edx, %edx
	divl spt			# eax = LBA / spt, edx = LBA % spt
	movl spt, %ebx
	subl %edx, %ebx			# sectors left on this track
	cmpl %ecx, %ebx
	jbe 2f
	movl %ecx, %ebx
2:	pushl %ecx
	movl %edx, %ecx
	incl %ecx			# cl = sector (1-based)
	xorl %edx, %edx
	divl heads			# eax = cylinder, edx = head
	movb %al, %ch
	shlb $6, %ah
	orb %ah, %cl
	movb %dl, %dh
	movb drive, %dl
	movl %edi, %eax
	shrl $4, %eax
	movw %ax, %es
	pushl %ebx
	movl %edi, %eax
	andw $0x0f, %ax
	movw %ax, %bx
	popl %eax			# sectors this call
	pushl %eax
	movb $0x02, %ah
	int $0x13
	popl %ebx
	popl %ecx
	movb $7, %al
	jc fail16
	addl %ebx, %ebp
	subl %ebx, %ecx
	shll $9, %ebx
	addl %ebx, %edi
	jmp 1b
3:	xorw %ax, %ax
	movw %ax, %es
	popal
	ret

# ext_read: ebp = LBA, ecx = sectors, edi = linear buffer (below 1 MiB). int 13h AH=42h
# in calls of at most 15 sectors, so every area takes several calls.
ext_read:
	pushal
1:	testl %ecx, %ecx
	jz 3f
	movl %ecx, %ebx
	cmpl $15, %ebx
	jbe 2f
	movl $15, %ebx
2:	movw %bx, dap_count
	movl %edi, %eax
	andw $0x0f, %ax
	movw %ax, dap_offset
	movl %edi, %eax
	shrl $4, %eax
	movw %ax, dap_segment
	movl %ebp, dap_lba
	movl $0, dap_lba + 4
	movb $0x42, %ah
	movb drive, %dl
	movw $dap, %si
	int $0x13
	movb $8, %al
	jc fail16
	cmpw dap_count, %bx		# the BIOS writes back what it transferred
	jne fail16
	addl %ebx, %ebp
	subl %ebx, %ecx
	shll $9, %ebx
	addl %ebx, %edi
	jmp 1b
3:	popal
	ret

# puts16: ds:si = NUL-terminated string to COM1.
puts16:
	pusha
1:	lodsb
	testb %al, %al
	jz 3f
	movb %al, %ah
	movw $COM1 + 5, %dx
	movw $0xffff, %cx
2:	inb %dx, %al
	testb $0x20, %al
	loopz 2b
	movb %ah, %al
	movw $COM1, %dx
	outb %al, %dx
	jmp 1b
3:	popa
	ret

# fail16: al = verdict.
fail16:
	movw $msg_fail16, %si
	call puts16
	movw $EXIT_PORT, %dx
	outb %al, %dx
1:	cli
	hlt
	jmp 1b

msg_stage2:	.asciz "bootdisk: stage 2, int 13h reads\n"
msg_chs:	.asciz "bootdisk: CHS reads (AH=02h)\n"
msg_ext:	.asciz "bootdisk: extended reads (AH=42h)\n"
msg_fail16:	.asciz "FAIL: int 13h\n"

	FLAT_GDT
	.word 0
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.balign 4
dap:	.byte 16, 0
dap_count:	.word 0
dap_offset:	.word 0
dap_segment:	.word 0
dap_lba:	.long 0, 0

# ======================================================================================
# 32-bit protected mode: the checks
# ======================================================================================

	.code32
	.text
pm32:
	LOAD_DATA_SEGS
	movl $0x7c00, %esp
	cld
	call idt_install
	call uart_init
	PRINTLN "bootdisk: 32-bit protected mode"

	movl $AREA_A, %esi
	movzwl INFO_PAT_A_LBA, %eax
	movzwl INFO_PAT_A_COUNT, %ecx
	call verify_sectors
	jnc 1f
	FAIL 9, "pattern area A read back wrong"
1:	movl $AREA_B, %esi
	movl INFO_TOTAL, %eax
	movzwl INFO_PAT_B_COUNT, %ecx
	subl %ecx, %eax
	call verify_sectors
	jnc 2f
	FAIL 10, "pattern area B (end of disk) read back wrong"
2:	PRINT "bootdisk: "
	movzwl INFO_PAT_A_COUNT, %eax
	movzwl INFO_PAT_B_COUNT, %ecx
	addl %ecx, %eax
	call putdec
	PRINTLN " pattern sectors verified"

	movb $0, cfg_method
	movb $0, code_base
	PRINTLN "pci: bus 0 through CF8/CFC"
	call pci_checks
	call ecam_checks

	PRINTLN "bootdisk: all checks passed"
	movl $V_PASS, %eax
	jmp exit_verdict

# verify_sectors: esi = buffer, eax = LBA of its first sector, ecx = count (> 0).
# CF set (and the culprit printed) when a sector is not the pattern of its LBA.
verify_sectors:
	pushal
1:	cmpl %eax, (%esi)
	jne 3f
	cmpl $PAT_MAGIC, 4(%esi)
	jne 3f
	xorl %edx, %edx			# the 128 dwords sum to zero
	xorl %edi, %edi
2:	addl (%esi,%edi,4), %edx
	incl %edi
	cmpl $128, %edi
	jb 2b
	testl %edx, %edx
	jnz 3f
	addl $512, %esi
	incl %eax
	loop 1b
	popal
	clc
	ret
3:	PRINT "disk: sector at LBA "
	call putdec
	PRINT " is not its pattern: it starts "
	movl (%esi), %eax
	call puthex32
	call putsp
	movl 4(%esi), %eax
	call puthex32
	call putnl
	popal
	stc
	ret

# ---- bus 0 --------------------------------------------------------------------------------

# pci_checks: one pass over bus 0 with the current cfg_method and code_base.
pci_checks:
	pushal
	movl $0, found_blk
	movl $0, found_net
	movl $0, found_testdev
	movl $0, dec_count
	xorl %ebx, %ebx
	movl $8, %ecx
	call cfg_read32
	shrl $16, %eax
	cmpw $0x0600, %ax
	je 1f
	FAILP 16, "00:00.0 is not a host bridge"
1:	movl $check_function, %ebp
	call pci_walk
	cmpl $0, found_blk
	jne 2f
	FAILP 17, "no virtio-blk (1af4:1001) on bus 0"
2:	cmpl $0, found_net
	jne 3f
	FAILP 18, "no virtio-net (1af4:1000) on bus 0"
3:	cmpl $0, found_testdev
	jne 4f
	FAILP 19, "no pci-testdev (1b36:0005) on bus 0"
4:	PRINT "pci: "
	movl dec_count, %eax
	call putdec
	PRINTLN " decoded BARs, none overlapping; every device answered"
	popal
	ret

# pci_walk: calls ebp with ebx = bdf for every function present on bus 0, in order.
pci_walk:
	pushal
	xorl %ebx, %ebx
1:	xorl %ecx, %ecx
	call cfg_read16
	cmpw $0xffff, %ax
	je 4f
	movl $0x0e, %ecx
	call cfg_read8
	pushl %eax			# header type: bit 7 = several functions
	call *%ebp
	popl %eax
	testb $0x80, %al
	jz 4f
	pushl %ebx
2:	incl %ebx
	testl $7, %ebx
	jz 3f
	xorl %ecx, %ecx
	call cfg_read16
	cmpw $0xffff, %ax
	je 2b
	call *%ebp
	jmp 2b
3:	popl %ebx
4:	andl $~7, %ebx
	addl $8, %ebx
	cmpl $256, %ebx
	jb 1b
	popal
	ret

# check_function: ebx = bdf. Prints the function, sizes its BARs, remembers the decoded
# ones (failing on an overlap) and checks the devices it knows.
check_function:
	pushal
	xorl %ecx, %ecx
	call cfg_read32
	movl %eax, cur_id
	PRINT "  "
	call putbdf
	call putsp
	call puthex16
	movb $':', %al
	call putc
	movl cur_id, %eax
	shrl $16, %eax
	call puthex16
	PRINT " class "
	movl $8, %ecx
	call cfg_read32
	shrl $8, %eax
	rorl $16, %eax
	call puthex8
	roll $16, %eax
	call puthex16
	call putnl
	movl $0x0e, %ecx
	call cfg_read8
	testb $0x7f, %al
	jnz 9f				# bridges: no BARs of a type-0 header
	call size_bars
	call print_bars
	movl $4, %ecx
	call cfg_read16
	movl %eax, cur_cmd
	call record_bars
	movl cur_id, %eax
	cmpl $ID_VIRTIO_BLK, %eax
	jne 1f
	call check_blk
	jmp 9f
1:	cmpl $ID_VIRTIO_NET, %eax
	jne 2f
	call check_net
	jmp 9f
2:	cmpl $ID_TESTDEV, %eax
	jne 9f
	call check_testdev
9:	popal
	ret

# size_one: ebx = bdf, ecx = BAR register -> eax = its value, edx = what it reads after
# all ones were written. Writes the value back and fails unless it reads back unchanged.
size_one:
	pushl %esi
	call cfg_read32
	movl %eax, %esi
	movl $0xffffffff, %eax
	call cfg_write32
	call cfg_read32
	movl %eax, %edx
	movl %esi, %eax
	call cfg_write32
	call cfg_read32
	cmpl %esi, %eax
	je 1f
	PRINT "    BAR register "
	movl %ecx, %eax
	call puthex8
	PRINT " was "
	movl %esi, %eax
	call puthex32
	PRINT ", reads "
	call cfg_read32
	call puthex32
	PRINTLN " after sizing"
	FAILP 28, "a BAR does not take back its value"
1:	popl %esi
	ret

# size_bars: ebx = bdf. Fills bar_kind/bar_base/bar_size with decoding off, as an OS
# sizes BARs, then restores the command register.
size_bars:
	pushal
	movl $4, %ecx
	call cfg_read16
	movl %eax, %ebp
	andl $0xfffc, %eax
	call cfg_write16
	xorl %esi, %esi
1:	cmpl $6, %esi
	jae 8f
	movb $0, bar_kind(%esi)
	movl $0, bar_base(,%esi,4)
	movl $0, bar_size(,%esi,4)
	leal 0x10(,%esi,4), %ecx
	call size_one
	testl %edx, %edx
	jz 7f				# not implemented
	testb $1, %al
	jz 3f
	andl $0xfffc, %edx		# I/O: 16 address bits
	negl %edx
	andl $0xffff, %edx
	jz 6f
	andl $~3, %eax
	movb $1, bar_kind(%esi)
	jmp 5f
3:	movl %eax, %edi
	andl $~0xf, %edx
	negl %edx			# 0: 4 GiB or more
	andl $~0xf, %eax
	movl %eax, bar_base(,%esi,4)
	movl %edi, %eax
	shrl $1, %eax
	andl $3, %eax
	cmpl $2, %eax
	jne 4f
	cmpl $5, %esi			# 64-bit: the next register is the high half
	jae 6f
	pushl %edx
	leal 0x14(,%esi,4), %ecx
	call size_one
	popl %edx
	movl bar_base(,%esi,4), %edi
	movb $3, bar_kind(%esi)		# above 4 GiB: not reachable from here
	testl %eax, %eax
	jnz 2f
	testl %edx, %edx
	jz 2f
	movb $2, bar_kind(%esi)
2:	movl %edi, bar_base(,%esi,4)
	movl %edx, bar_size(,%esi,4)
	incl %esi
	movb $0, bar_kind(%esi)
	movl $0, bar_base(,%esi,4)
	movl $0, bar_size(,%esi,4)
	jmp 7f
4:	testl %edx, %edx
	jz 6f
	movl bar_base(,%esi,4), %eax
	movb $2, bar_kind(%esi)
5:	movl %eax, bar_base(,%esi,4)
	movl %edx, bar_size(,%esi,4)
	leal -1(%edx), %eax		# sizes are powers of two
	testl %eax, %edx
	jnz 6f
7:	incl %esi
	jmp 1b
6:	PRINT "    BAR "
	movl %esi, %eax
	call putdec
	PRINTLN " sizes to no power of two"
	FAILP 28, "a BAR with an impossible size"
8:	movl %ebp, %eax
	movl $4, %ecx
	call cfg_write16
	popal
	ret

print_bars:
	pushal
	xorl %esi, %esi
1:	movzbl bar_kind(%esi), %eax
	testl %eax, %eax
	jz 5f
	PRINT "    bar"
	movl %esi, %eax
	call putdec
	movzbl bar_kind(%esi), %eax
	cmpl $1, %eax
	jne 2f
	PRINT " io  "
	jmp 4f
2:	cmpl $2, %eax
	jne 3f
	PRINT " mem "
	jmp 4f
3:	PRINT " mem (above 4 GiB, not checked) "
4:	movl bar_base(,%esi,4), %eax
	call puthex32
	PRINT " size "
	movl bar_size(,%esi,4), %eax
	call puthex32
	call putnl
5:	incl %esi
	cmpl $6, %esi
	jb 1b
	popal
	ret

# record_bars: ebx = bdf. Every BAR the command register decodes must not overlap one
# seen before in the same space.
record_bars:
	pushal
	xorl %esi, %esi
1:	movzbl bar_kind(%esi), %eax
	cmpl $1, %eax
	jne 2f
	testl $1, cur_cmd
	jz 7f
	jmp 3f
2:	cmpl $2, %eax
	jne 7f
	testl $2, cur_cmd
	jz 7f
3:	movl bar_base(,%esi,4), %edx	# [edx, ecx] inclusive
	testl %edx, %edx
	jz 7f				# unassigned
	movl bar_size(,%esi,4), %ecx
	leal -1(%edx,%ecx), %ecx
	xorl %edi, %edi
4:	cmpl dec_count, %edi
	jae 6f
	cmpb dec_kind(%edi), %al
	jne 5f
	cmpl dec_last(,%edi,4), %edx
	ja 5f
	cmpl dec_base(,%edi,4), %ecx
	jb 5f
	PRINT "    bar"
	movl %esi, %eax
	call putdec
	PRINT " overlaps "
	pushl %ebx
	movl dec_bdf(,%edi,4), %ebx
	call putbdf
	popl %ebx
	PRINT " bar"
	movzbl dec_bar(%edi), %eax
	call putdec
	call putnl
	FAILP 29, "two decoded BARs overlap"
5:	incl %edi
	jmp 4b
6:	cmpl $MAX_DECODED, %edi
	jb 8f
	FAILP 30, "more decoded BARs than this program remembers"
8:	movb %al, dec_kind(%edi)
	movl %edx, dec_base(,%edi,4)
	movl %ecx, dec_last(,%edi,4)
	movl %ebx, dec_bdf(,%edi,4)
	movl %esi, %eax
	movb %al, dec_bar(%edi)
	incl dec_count
7:	incl %esi
	cmpl $6, %esi
	jb 1b
	popal
	ret

# ---- the devices ---------------------------------------------------------------------------

# check_blk: the legacy registers at BAR0 report the capacity the image builder wrote.
check_blk:
	pushal
	cmpb $1, bar_kind
	jne 1f
	testl $1, cur_cmd
	jnz 2f
1:	FAILP 20, "virtio BAR0 is not a decoded I/O BAR"
2:	movl bar_base, %edx
	addl $0x14, %edx
	inl %dx, %eax
	movl %eax, %ecx
	addl $4, %edx
	inl %dx, %eax
	PRINT "    virtio-blk capacity "
	xchgl %eax, %ecx
	call putdec
	PRINT " sectors, image has "
	pushl %eax
	movl INFO_TOTAL, %eax
	call putdec
	call putnl
	popl %eax
	cmpl INFO_TOTAL, %eax
	jne 3f
	testl %ecx, %ecx
	jz 4f
3:	FAILP 21, "virtio-blk capacity is not the image's size"
4:	incl found_blk
	popal
	ret

# check_net: the MAC at BAR0 + 0x14 is the one both QEMU and the tests configure.
check_net:
	pushal
	cmpb $1, bar_kind
	jne 1f
	testl $1, cur_cmd
	jnz 2f
1:	FAILP 20, "virtio BAR0 is not a decoded I/O BAR"
2:	PRINT "    virtio-net MAC"
	movl bar_base, %edx
	addl $0x14, %edx
	xorl %esi, %esi
	xorl %ecx, %ecx			# mismatches
3:	inb %dx, %al
	movb %al, %ah
	movb $' ', %al
	call putc
	movb %ah, %al
	call puthex8
	cmpb expected_mac(%esi), %al
	je 4f
	incl %ecx
4:	incl %edx
	incl %esi
	cmpl $6, %esi
	jb 3b
	call putnl
	testl %ecx, %ecx
	jz 5f
	FAILP 22, "virtio-net MAC is not 52:54:00:12:34:56"
5:	incl found_net
	popal
	ret

# check_testdev: both BARs run the device's test table.
check_testdev:
	pushal
	movl %ebx, testdev_bdf
	cmpb $2, bar_kind
	jne 1f
	testl $2, cur_cmd
	jz 1f
	cmpb $1, bar_kind + 1
	jne 1f
	testl $1, cur_cmd
	jnz 2f
1:	FAILP 23, "pci-testdev BAR0 is not decoded memory or BAR1 not decoded I/O"
2:	movb $0, acc_io
	movl bar_base, %eax
	movl %eax, acc_base
	movl bar_size, %eax
	movl %eax, acc_size
	movb $24, td_code
	PRINTLN "    pci-testdev memory BAR"
	call testdev_bar
	movb $1, acc_io
	movl bar_base + 4, %eax
	movl %eax, acc_base
	movl bar_size + 4, %eax
	movl %eax, acc_size
	movb $26, td_code
	PRINTLN "    pci-testdev I/O BAR"
	call testdev_bar
	incl found_testdev
	popal
	ret

# acc_rd: ecx = offset in the BAR (acc_io, acc_base), dl = width 1/2/4 -> eax.
acc_rd:
	pushl %ebx
	pushl %edx
	pushl %edi
	movzbl %dl, %ebx
	movl acc_base, %edi
	addl %ecx, %edi
	xorl %eax, %eax
	cmpb $0, acc_io
	jne 4f
	cmpl $1, %ebx
	jne 1f
	movb (%edi), %al
	jmp 9f
1:	cmpl $2, %ebx
	jne 2f
	movw (%edi), %ax
	jmp 9f
2:	movl (%edi), %eax
	jmp 9f
4:	movl %edi, %edx
	cmpl $1, %ebx
	jne 5f
	inb %dx, %al
	jmp 9f
5:	cmpl $2, %ebx
	jne 6f
	inw %dx, %ax
	jmp 9f
6:	inl %dx, %eax
9:	popl %edi
	popl %edx
	popl %ebx
	ret

# acc_wr: ecx = offset, dl = width, eax = value.
acc_wr:
	pushl %ebx
	pushl %edx
	pushl %edi
	movzbl %dl, %ebx
	movl acc_base, %edi
	addl %ecx, %edi
	cmpb $0, acc_io
	jne 4f
	cmpl $1, %ebx
	jne 1f
	movb %al, (%edi)
	jmp 9f
1:	cmpl $2, %ebx
	jne 2f
	movw %ax, (%edi)
	jmp 9f
2:	movl %eax, (%edi)
	jmp 9f
4:	movl %edi, %edx
	cmpl $1, %ebx
	jne 5f
	outb %al, %dx
	jmp 9f
5:	cmpl $2, %ebx
	jne 6f
	outw %ax, %dx
	jmp 9f
6:	outl %eax, %dx
9:	popl %edi
	popl %edx
	popl %ebx
	ret

# td_fail: the failure of the current testdev BAR; eax = 0 for its header, 1 for its count.
td_fail:
	movzbl td_code, %ecx
	addl %ecx, %eax
	movzbl code_base, %ecx
	addl %ecx, %eax
	jmp fail_exit

# testdev_bar: walks the test table of one BAR: each test announces an offset, a width
# and a value; a write of another value must never count, the value itself counts once
# unless an ioeventfd (registered by the device for that test) took it.
testdev_bar:
	pushal
	xorl %esi, %esi			# test number
1:	cmpl $16, %esi
	jae 8f
	movl %esi, %eax
	xorl %ecx, %ecx
	movb $1, %dl
	call acc_wr			# start test esi
	movl $1, %ecx
	call acc_rd
	movl %eax, td_width
	cmpl $1, %eax
	je 2f
	cmpl $2, %eax
	je 2f
	cmpl $4, %eax
	jne 8f				# past the last test
2:	movb $4, %dl
	movl $4, %ecx
	call acc_rd
	movl %eax, td_offset
	movl $8, %ecx
	call acc_rd
	movl %eax, td_data
	movl $12, %ecx
	call acc_rd
	movl %eax, td_count
	movb $1, %dl			# the name, NUL-terminated within 32 bytes
	xorl %edi, %edi
3:	leal 16(%edi), %ecx
	call acc_rd
	movb %al, td_name(%edi)
	testb %al, %al
	jz 4f
	incl %edi
	cmpl $32, %edi
	jb 3b
	movb $0, td_name + 32
	PRINTLN "FAIL: a pci-testdev test name is not terminated"
	xorl %eax, %eax
	jmp td_fail

4:	PRINT "      test "
	movl %esi, %eax
	call putdec
	call putsp
	PRINT "width "
	movl td_width, %eax
	call putdec
	PRINT " offset "
	movl td_offset, %eax
	call puthex32
	PRINT " data "
	movl td_data, %eax
	call puthex32
	PRINT " "
	pushl %esi
	movl $td_name, %esi
	call puts
	popl %esi

	# The test's location lies past the header and inside the BAR.
	movl td_offset, %eax
	cmpl $16, %eax
	jb 5f
	addl td_width, %eax
	jc 5f
	cmpl acc_size, %eax
	ja 5f
	cmpl $0, td_count
	je 6f
	PRINTLN ""
	PRINTLN "FAIL: pci-testdev count is not zero when its test starts"
	xorl %eax, %eax
	jmp td_fail
5:	PRINTLN ""
	PRINTLN "FAIL: pci-testdev test location outside its BAR"
	xorl %eax, %eax
	jmp td_fail

6:	movl td_width, %edx		# the value, as wide as the test's access
	movl td_data, %eax
	cmpl $4, %edx
	je 7f
	andl $0xffff, %eax
	cmpl $2, %edx
	je 7f
	andl $0xff, %eax
7:	movl %eax, td_data
	xorl $0xa5, %eax		# differs in the low byte whatever the width
	movl td_offset, %ecx
	call acc_wr
	movl $12, %ecx
	movb $4, %dl
	call acc_rd
	movl %eax, td_c1
	movl td_data, %eax
	movl td_offset, %ecx
	movl td_width, %edx
	call acc_wr
	movl $12, %ecx
	movb $4, %dl
	call acc_rd
	movl %eax, td_c2
	PRINT " counts "
	movl td_c1, %eax
	call putdec
	call putsp
	movl td_c2, %eax
	call putdec
	call putnl
	call td_check_counts
	jc 9f
	incl %esi
	jmp 1b

8:	testl %esi, %esi
	jnz 10f
	PRINTLN "FAIL: pci-testdev BAR has no test"
	xorl %eax, %eax
	jmp td_fail
9:	PRINTLN "FAIL: pci-testdev counted a write it must not (or missed one it must)"
	movl $1, %eax
	jmp td_fail
10:	movl $0xff, %eax		# stop the last test: no further access counts
	xorl %ecx, %ecx
	movb $1, %dl
	call acc_wr
	popal
	ret

# td_check_counts: CF set when td_c1 (after a wrong value) and td_c2 (after the right
# one) break the rules of the test named td_name.
td_check_counts:
	pushal
	movl td_c1, %eax
	movl td_c2, %edx
	movl $sfx_noefd, %edi
	call name_ends_with
	jnz 1f
	cmpl $0, %eax			# no eventfd: the device counts the value once
	jne 8f
	cmpl $1, %edx
	jne 8f
	jmp 9f
1:	movl $sfx_datamatch, %edi
	call name_ends_with
	jnz 2f
	cmpl $0, %eax			# an eventfd may take the value; nothing counts another
	jne 8f
	cmpl $1, %edx
	ja 8f
	jmp 9f
2:	movl $sfx_wildcard, %edi
	call name_ends_with
	jnz 3f
	cmpl $1, %eax			# an eventfd may take every write
	ja 8f
	subl %eax, %edx
	jb 8f
	cmpl $1, %edx
	ja 8f
	jmp 9f
3:	cmpl $2, %edx			# a test this program does not know: at most our writes
	ja 8f
9:	popal
	clc
	ret
8:	popal
	stc
	ret

# name_ends_with: edi = suffix; ZF set when td_name ends with it.
name_ends_with:
	pushal
	movl $td_name, %esi
	xorl %ecx, %ecx
1:	cmpb $0, (%esi,%ecx)
	je 2f
	incl %ecx
	jmp 1b
2:	xorl %edx, %edx
3:	cmpb $0, (%edi,%edx)
	je 4f
	incl %edx
	jmp 3b
4:	cmpl %edx, %ecx
	jb 6f
	subl %edx, %ecx
	addl %ecx, %esi
5:	movb (%edi), %al
	cmpb %al, (%esi)
	jne 6f
	testb %al, %al
	jz 7f				# ZF set
	incl %esi
	incl %edi
	jmp 5b
6:	orl $1, %ecx			# ZF clear
	incl %ecx
7:	popal
	ret

# ---- ECAM ---------------------------------------------------------------------------------

# ecam_checks: when ECAM shows the same 00:00.0 as CF8 (or the disk requires it), the
# whole pass again through ECAM, then the two mechanisms must agree on every register,
# see each other's writes, and find no device on other buses.
ecam_checks:
	pushal
	movb $0, cfg_method
	xorl %ebx, %ebx
	xorl %ecx, %ecx
	call cfg_read32
	movl %eax, %edx
	movb $1, cfg_method
	call cfg_read32
	movb $0, cfg_method
	cmpl %edx, %eax
	je 2f
	testw $FLAG_ECAM_REQUIRED, INFO_FLAGS
	jnz 1f
	PRINTLN "ecam: nothing at 0xb0000000 and the disk does not require it: skipped"
	popal
	ret
1:	PRINT "ecam: 00:00.0 reads "
	call puthex32
	PRINT " through ECAM, "
	movl %edx, %eax
	call puthex32
	PRINTLN " through CF8"
	FAIL 64, "no ECAM at 0xb0000000"

2:	PRINTLN "pci: bus 0 through ECAM at 0xb0000000"
	movb $1, cfg_method
	movb $32, code_base
	call pci_checks
	movl $compare_function, %ebp
	call pci_walk
	PRINTLN "ecam: every register of every function reads the same through CF8"

	movl testdev_bdf, %ebx		# interrupt line: writable on every function
	movl $0x3c, %ecx
	movb $0, cfg_method
	call cfg_read8
	movl %eax, %esi
	movb $1, cfg_method
	movl $0xa5, %eax
	call cfg_write8
	movb $0, cfg_method
	call cfg_read8
	cmpl $0xa5, %eax
	jne 3f
	movl $0x5a, %eax
	call cfg_write8
	movb $1, cfg_method
	call cfg_read8
	cmpl $0x5a, %eax
	jne 3f
	movl %esi, %eax
	call cfg_write8
	PRINTLN "ecam: a write through either mechanism reads back through the other"
	jmp 4f
3:	FAIL 66, "a configuration write through one mechanism is not seen through the other"

4:	movl $0x100, %ebx		# 01:00.0, then the last function of bus 255
	call bus_empty
	movl $0xffff, %ebx
	call bus_empty
	PRINTLN "ecam: no device on bus 1 or bus 255"
	movb $0, cfg_method
	movb $0, code_base
	popal
	ret

# bus_empty: ebx = bdf; its vendor reads 0xffff through both mechanisms.
bus_empty:
	pushal
	xorl %ecx, %ecx
	movb $0, cfg_method
	call cfg_read16
	cmpw $0xffff, %ax
	jne 1f
	movb $1, cfg_method
	call cfg_read16
	cmpw $0xffff, %ax
	jne 1f
	popal
	ret
1:	call putbdf
	PRINTLN " answers"
	FAIL 67, "a function answers on a bus with no device"

# compare_function: ebx = bdf; registers 0x00-0xff through CF8 and ECAM. Leaves
# cfg_method on ECAM, which pci_walk uses.
compare_function:
	pushal
	xorl %ecx, %ecx
1:	movb $0, cfg_method
	call cfg_read32
	movl %eax, %edx
	movb $1, cfg_method
	call cfg_read32
	cmpl %edx, %eax
	jne 2f
	addl $4, %ecx
	cmpl $0x100, %ecx
	jb 1b
	popal
	ret
2:	call putbdf
	PRINT " register "
	pushl %eax
	movl %ecx, %eax
	call puthex8
	PRINT ": ECAM "
	popl %eax
	call puthex32
	PRINT ", CF8 "
	movl %edx, %eax
	call puthex32
	call putnl
	FAIL 65, "ECAM and CF8 disagree"

	.section .rodata
expected_mac:	.byte 0x52, 0x54, 0x00, 0x12, 0x34, 0x56
sfx_noefd:	.asciz "-no-eventfd"
sfx_datamatch:	.asciz "-datamatch-eventfd"
sfx_wildcard:	.asciz "-wildcard-eventfd"

	.data
drive:		.byte 0
	.balign 4
spt:		.long 0
heads:		.long 0
found_blk:	.long 0
found_net:	.long 0
found_testdev:	.long 0
testdev_bdf:	.long 0
cur_id:		.long 0
cur_cmd:	.long 0
bar_base:	.fill 6, 4, 0
bar_size:	.fill 6, 4, 0
bar_kind:	.fill 8, 1, 0		# 0 none, 1 I/O, 2 memory below 4 GiB, 3 above
dec_count:	.long 0
dec_base:	.fill MAX_DECODED, 4, 0
dec_last:	.fill MAX_DECODED, 4, 0
dec_bdf:	.fill MAX_DECODED, 4, 0
dec_kind:	.fill MAX_DECODED, 1, 0
dec_bar:	.fill MAX_DECODED, 1, 0
acc_base:	.long 0
acc_size:	.long 0
acc_io:		.byte 0
td_code:	.byte 0
	.balign 4
td_width:	.long 0
td_offset:	.long 0
td_data:	.long 0
td_count:	.long 0
td_c1:		.long 0
td_c2:		.long 0
td_name:	.fill 36, 1, 0
