# bench-bootsect.bin: a boot sector that ends the run as soon as the firmware jumps to it
# (verdict 1 through isa-debug-exit), so that a boot's wall time is the firmware's alone.
# The benchmark puts it in place of bootdisk.img's own boot sector.

	.include "guest.inc"

	.code16
	.section .entry, "ax"
	.globl _start
_start:
	cli
	movw $EXIT_PORT, %dx
	movb $V_PASS, %al
	outb %al, %dx
1:	hlt
	jmp 1b
	.org 510
	.byte 0x55, 0xaa
