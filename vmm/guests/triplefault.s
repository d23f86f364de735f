# triplefault.rom: a 64 KiB firmware image that triple-faults: with an empty IDT (limit 0)
# int3 cannot be delivered, nor the #GP it raises, nor the double fault: the CPU shuts
# down.

	.code16
	.section .entry, "ax"
	.globl _start
_start:
	cli
	lidtl %cs:(empty_idt - _start)	# cs base is 0xffff0000, the image's start
	int3
1:	hlt				# never reached
	jmp 1b

	.balign 8
empty_idt:
	.word 0
	.long 0

	.section .reset, "ax"
	jmp _start
