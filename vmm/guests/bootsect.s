# Boot sector of bootdisk.img: loaded at 0x7c00 by the BIOS, it reads stage 2 (LBA 1..)
# to 0x8000 through int 13h CHS reads, checks its sum against the disk information
# block that mkbootdisk.py fills in, and jumps to it with the drive number in dl.

	.include "guest.inc"

	.equ STAGE2_ADDR, 0x8000
	.equ STAGE2_MAGIC, 0x32534d42	# "BMS2"
	.equ INFO_MAGIC, 0x49444d42	# "BMDI"
	.equ INFO_OFFSET, 0x1a0
	.equ MAX_STAGE2_SECTORS, 48	# 0x8000 + 48 * 512 stays below 0x20000

	.code16
	.section .entry, "ax"
	.globl _start
_start:
	cli
	ljmp $0, $1f			# some BIOSes enter at 07c0:0000
1:	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw $0x7c00, %sp
	sti
	cld
	movb %dl, drive

	movw $msg_hello, %si
	call puts16

	movb $5, %al
	cmpl $INFO_MAGIC, info_magic
	jne fail16
	movw info_stage2_sectors, %cx
	testw %cx, %cx
	jz fail16
	cmpw $MAX_STAGE2_SECTORS, %cx
	ja fail16

	# Geometry as the BIOS translates it; CHS reads below depend on it.
	movb $8, %ah
	movb drive, %dl
	xorw %di, %di			# es:di = 0 works around BIOSes that use it
	int $0x13
	movb $2, %al
	jc fail16
	andw $0x3f, %cx
	jz fail16
	movw %cx, spt
	movzbw %dh, %ax
	incw %ax
	movw %ax, heads
	xorw %ax, %ax
	movw %ax, %es

	# One sector per call: stage 2 is small and this exercises many requests.
	movw $1, %si			# LBA
	movw $STAGE2_ADDR, %bx
2:	movw %si, %ax
	call read_chs
	addw $512, %bx
	incw %si
	movw %si, %ax
	decw %ax
	cmpw info_stage2_sectors, %ax
	jb 2b

	# The 16-bit sum of every word of stage 2's sectors.
	movw info_stage2_sectors, %cx
	shlw $8, %cx			# words
	movw $STAGE2_ADDR, %si
	xorw %dx, %dx
3:	lodsw
	addw %ax, %dx
	loop 3b
	movb $4, %al
	cmpw info_stage2_sum, %dx
	jne fail16
	cmpl $STAGE2_MAGIC, STAGE2_ADDR
	jne fail16

	movb drive, %dl
	ljmp $0, $STAGE2_ADDR + 4

# read_chs: ax = LBA, es:bx = buffer; one sector. Fails the run with verdict 3.
read_chs:
	pusha
	xorw %dx, %dx
	divw spt			# ax = LBA / spt, dx = LBA % spt
	movw %dx, %cx
	incw %cx			# sector, 1-based
	xorw %dx, %dx
	divw heads			# ax = cylinder, dx = head
	movb %al, %ch
	shlb $6, %ah
	orb %ah, %cl
	movb %dl, %dh
	movb drive, %dl
	movw $0x0201, %ax
	int $0x13
	movb $3, %al
	jc fail16
	popa
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
	movw $msg_fail, %si
	call puts16
	movw $EXIT_PORT, %dx
	outb %al, %dx
4:	cli
	hlt
	jmp 4b

msg_hello:	.asciz "bootdisk: boot sector\n"
msg_fail:	.asciz "bootdisk: boot sector failed\n"

drive:	.byte 0
	.balign 2
spt:	.word 0
heads:	.word 0

	# Filled in by mkbootdisk.py; layout documented there and in README.md.
	.org INFO_OFFSET
info_magic:		.long 0
info_total_sectors:	.long 0
info_stage2_sectors:	.word 0
info_stage2_sum:	.word 0
info_pat_a_lba:		.word 0
info_pat_a_count:	.word 0
info_pat_b_count:	.word 0
info_flags:		.word 0

	.org 510
	.byte 0x55, 0xaa
