# halt.rom: a 64 KiB firmware image that stops at once: interrupts off, then hlt. A VMM
# sees every vCPU halted with interrupts disabled, a guest that can never run again.

	.code16
	.section .entry, "ax"
	.globl _start
_start:
	cli
	hlt
	jmp _start			# an NMI or SMI would resume here

	.section .reset, "ax"
	jmp _start
