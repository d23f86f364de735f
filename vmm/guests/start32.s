# start32.s: the start-up of the 64 KiB firmware guests (-bios). From the reset vector it
# enters 32-bit protected mode, copies the image to RAM at 0x10000 and runs there (the
# guest's own writes may move a BAR over the ROM), loads an IDT whose every vector is a
# failure, sets up COM1 and calls guest_main; what guest_main returns in eax is the
# verdict. ap_start brings the other vCPUs up in the same state, each on its own stack.
#
# Memory: the image at [0x10000, 0x20000), the AP trampoline at 0x8000, stacks of 64 KiB
# below 0x1f0000 (the BSP's first, then one per AP), nothing else below 2 MiB.

	.include "guest.inc"

	.equ ROM_BASE, 0xffff0000
	.equ RAM_BASE, 0x10000
	.equ STACK_TOP, 0x1f0000
	.equ STACK_SIZE, 0x10000
	.equ MAX_CPUS, 8
	.equ TRAMPOLINE, 0x8000		# SIPI vector 0x08
	.equ LAPIC, 0xfee00000

# ---- reset: real mode in the ROM at 0xffff0000 ---------------------------------------------

	.code16
	.section .entry, "ax"
	.globl _start
_start:
	cli
	cld
	lgdtl %cs:(gdt_rom_desc - _start)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $(ROM_BASE + pm32_rom - _start)

	.code32
pm32_rom:
	LOAD_DATA_SEGS
	movl $ROM_BASE, %esi
	movl $RAM_BASE, %edi
	movl $0x10000 / 4, %ecx
	rep movsl
	movl $main32, %eax
	jmp *%eax

	FLAT_GDT
	.word 0
gdt_rom_desc:
	.word gdt_end - gdt - 1
	.long ROM_BASE + gdt - _start
	.word 0
	.globl gdt_ram_desc
gdt_ram_desc:
	.word gdt_end - gdt - 1
	.long gdt

# ---- the BSP: 32-bit, in RAM ---------------------------------------------------------------

	.text
main32:
	lgdt gdt_ram_desc		# the ROM copy of the GDT may be covered later
	ljmp $SEL_CODE32, $1f
1:	LOAD_DATA_SEGS
	movl $STACK_TOP, %esp
	call idt_install
	call uart_init
	call guest_main
	jmp exit_verdict

# ---- application processors -----------------------------------------------------------------

# void ap_start(void (*entry)(unsigned cpu)) (cdecl): wakes every other vCPU
# with INIT and two SIPIs; each runs entry(cpu), cpu = 1, 2, ... in wake-up order, with
# interrupts off, and halts if entry returns. ap_online counts those that reached entry;
# the caller waits for it (the number of vCPUs is the VMM's to tell, not the guest's).
	.globl ap_start, ap_online
ap_start:
	pushal
	movl 36(%esp), %eax
	movl %eax, ap_entry
	movl $ap_tramp, %esi
	movl $TRAMPOLINE, %edi
	movl $ap_tramp_end - ap_tramp, %ecx
	rep movsb
	orl $0x100, LAPIC + 0xf0	# the BSP's APIC software-enabled, as firmware leaves it
	movl $0, LAPIC + 0x310
	movl $0x000c4500, LAPIC + 0x300	# INIT, all excluding self
	call ipi_wait
	movl $0x000c4600 | (TRAMPOLINE >> 12), LAPIC + 0x300	# SIPI
	call ipi_wait
	movl $0x000c4600 | (TRAMPOLINE >> 12), LAPIC + 0x300	# the second SIPI of the MP spec
	call ipi_wait
	popal
	ret

# ipi_wait: until the ICR says delivered (bounded), then a pause the MP spec asks for.
ipi_wait:
	pushl %ecx
	movl $1000000, %ecx
1:	testl $0x1000, LAPIC + 0x300
	jz 2f
	pause
	loop 1b
2:	movl $100000, %ecx
3:	pause
	loop 3b
	popl %ecx
	ret

# Copied to TRAMPOLINE: real mode, cs = TRAMPOLINE >> 4, ip = 0.
	.code16
ap_tramp:
	cli
	cld
	lgdtl %cs:(ap_tramp_gdt - ap_tramp)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $ap_pm32
	.balign 2
	.word 0
ap_tramp_gdt:
	.word gdt_end - gdt - 1
	.long gdt
ap_tramp_end:

	.code32
ap_pm32:
	LOAD_DATA_SEGS
	movl $1, %eax
	lock xaddl %eax, ap_next	# this vCPU's number
	cmpl $MAX_CPUS, %eax
	jae ap_park			# no stack for it: it stays out of the way
	movl %eax, %ecx
	shll $16, %ecx			# STACK_SIZE
	movl $STACK_TOP, %esp
	subl %ecx, %esp
	lidt idt_desc
	lock incl ap_online
	pushl %eax
	call *ap_entry
ap_park:
	cli
	hlt
	jmp ap_park

	.data
	.balign 4
ap_entry:	.long ap_park
ap_next:	.long 1
ap_online:	.long 0

# ---- the reset vector: the last 16 bytes of the image -------------------------------

	.section .reset, "ax"
	.code16
	jmp _start
