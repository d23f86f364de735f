# 32-bit runtime shared by the boot disk's stage 2 and the hostile ROM: COM1 output,
# the verdict, exception handlers, and PCI configuration access through CF8/CFC or ECAM.
#
# Calling convention: arguments and results in registers as documented per function;
# every register not named as a result is preserved. Flat segments (SEL_CODE32/DATA32).

	.include "guest.inc"

	.code32
	.text

# ---- COM1 -----------------------------------------------------------------------------

# Programs 8N1 with FIFOs and no loopback, undoing whatever a guest wrote to the UART.
	.globl uart_init
uart_init:
	pushl %eax
	pushl %edx
	movw $COM1 + 1, %dx		# no interrupts
	xorb %al, %al
	outb %al, %dx
	movw $COM1 + 3, %dx		# divisor latch access
	movb $0x80, %al
	outb %al, %dx
	movw $COM1, %dx			# 115200 baud
	movb $1, %al
	outb %al, %dx
	movw $COM1 + 1, %dx
	xorb %al, %al
	outb %al, %dx
	movw $COM1 + 3, %dx		# 8N1, latch closed
	movb $0x03, %al
	outb %al, %dx
	movw $COM1 + 2, %dx		# FIFOs on and cleared
	movb $0x07, %al
	outb %al, %dx
	movw $COM1 + 4, %dx		# DTR and RTS, loopback off
	movb $0x03, %al
	outb %al, %dx
	popl %edx
	popl %eax
	ret

# putc: al = byte. Waits (bounded: a UART that never empties must not hang the run)
# for the transmitter holding register, then sends.
	.globl putc
putc:
	pushl %eax
	pushl %ecx
	pushl %edx
	movb %al, %ah
	movl $100000, %ecx
	movw $COM1 + 5, %dx
1:	inb %dx, %al
	testb $0x20, %al
	jnz 2f
	loop 1b
2:	movb %ah, %al
	movw $COM1, %dx
	outb %al, %dx
	popl %edx
	popl %ecx
	popl %eax
	ret

# puts: esi = NUL-terminated string.
	.globl puts
puts:
	pushl %eax
	pushl %esi
1:	lodsb
	testb %al, %al
	jz 2f
	call putc
	jmp 1b
2:	popl %esi
	popl %eax
	ret

	.globl putnl
putnl:
	pushl %eax
	movb $'\n', %al
	call putc
	popl %eax
	ret

	.globl putsp
putsp:
	pushl %eax
	movb $' ', %al
	call putc
	popl %eax
	ret

# puthex4: low nibble of al as one hex digit.
puthex4:
	pushl %eax
	andb $0x0f, %al
	addb $'0', %al
	cmpb $'9', %al
	jbe 1f
	addb $'a' - '9' - 1, %al
1:	call putc
	popl %eax
	ret

	.globl puthex8
puthex8:
	pushl %eax
	rorb $4, %al
	call puthex4
	rolb $4, %al
	call puthex4
	popl %eax
	ret

	.globl puthex16
puthex16:
	pushl %eax
	xchgb %al, %ah
	call puthex8
	xchgb %al, %ah
	call puthex8
	popl %eax
	ret

	.globl puthex32
puthex32:
	pushl %eax
	roll $16, %eax
	call puthex16
	roll $16, %eax
	call puthex16
	popl %eax
	ret

# putdec: eax as an unsigned decimal number.
	.globl putdec
putdec:
	pushal
	movl $10, %ecx
	xorl %ebx, %ebx			# digits pushed
1:	xorl %edx, %edx
	divl %ecx
	pushl %edx
	incl %ebx
	testl %eax, %eax
	jnz 1b
2:	popl %eax
	addb $'0', %al
	call putc
	decl %ebx
	jnz 2b
	popal
	ret

# putbdf: ebx = bus << 8 | dev << 3 | fn, printed as "bb:dd.f".
	.globl putbdf
putbdf:
	pushl %eax
	movl %ebx, %eax
	shrl $8, %eax
	call puthex8
	movb $':', %al
	call putc
	movl %ebx, %eax
	shrl $3, %eax
	andb $0x1f, %al
	call puthex8
	movb $'.', %al
	call putc
	movl %ebx, %eax
	andb $7, %al
	call puthex4
	popl %eax
	ret

# ---- verdict --------------------------------------------------------------------------

# fail_exit / exit_verdict: eax = verdict. Never returns: if no isa-debug-exit answers,
# the CPU halts with interrupts off, which a VMM reports as a stopped guest.
	.globl fail_exit, exit_verdict
fail_exit:
exit_verdict:
	PRINT "verdict "
	call putdec
	call putnl
	movw $EXIT_PORT, %dx
	outb %al, %dx
1:	cli
	hlt
	jmp 1b

# ---- exceptions -----------------------------------------------------------------------

# One stub per vector; those the CPU gives no error code push a zero so that every
# frame looks alike: vector, error code, eip, cs, eflags.
	.macro EXC_STUB n
exc_\n:
	.if (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
	.else
	pushl $0
	.endif
	pushl $\n
	jmp exc_common
	.endm

	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	EXC_STUB \n
	.endr

exc_common:
	pushal				# eax at 28(%esp) .. edi at 0(%esp); vector at 32
	cld
	call uart_init
	PRINT "FAIL: exception "
	movl 32(%esp), %eax
	call putdec
	PRINT " error code "
	movl 36(%esp), %eax
	call puthex32
	PRINT " at eip "
	movl 40(%esp), %eax
	call puthex32
	call putnl
	PRINT "  eax ecx edx ebx:"
	movl $28, %ecx
	call exc_dump
	PRINT "  esp ebp esi edi:"
	leal 52(%esp), %eax		# the stack before the exception
	call putsp
	call puthex32
	movl $8, %ecx
1:	movl (%esp,%ecx), %eax
	call putsp
	call puthex32
	subl $4, %ecx
	jns 1b
	call putnl
	PRINT "  stack:"
	xorl %ecx, %ecx
2:	movl 52(%esp,%ecx,4), %eax
	call putsp
	call puthex32
	incl %ecx
	cmpl $8, %ecx
	jb 2b
	call putnl
	movl $V_EXCEPTION, %eax
	jmp fail_exit

# exc_dump: the four saved registers at ecx+4(%esp), ecx(%esp), ... downwards.
exc_dump:
	pushl %edx
	movl $4, %edx
1:	movl 8(%esp,%ecx), %eax		# past our return address and edx
	call putsp
	call puthex32
	subl $4, %ecx
	decl %edx
	jnz 1b
	call putnl
	popl %edx
	ret

	.pushsection .rodata
	.balign 4
exc_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.long exc_\n
	.endr
	.popsection

# idt_install: builds 32 interrupt gates and loads the IDT. Interrupts stay disabled:
# every vector taken is a failure.
	.globl idt_install
idt_install:
	pushal
	xorl %ecx, %ecx
	movl $idt, %edi
1:	movl exc_table(,%ecx,4), %eax
	movw %ax, (%edi)			# offset 15:0
	movw $SEL_CODE32, 2(%edi)
	movw $0x8e00, 4(%edi)			# present, DPL 0, 32-bit interrupt gate
	shrl $16, %eax
	movw %ax, 6(%edi)			# offset 31:16
	addl $8, %edi
	incl %ecx
	cmpl $32, %ecx
	jb 1b
	lidt idt_desc
	popal
	ret

# ---- PCI configuration access -----------------------------------------------------------

# cfg_locate: ebx = bdf, ecx = register. Through CF8 (cfg_method 0): writes the address
# port and returns the data port in dx, ZF set. Through ECAM: edi = the byte's address,
# ZF clear. Unaligned registers are passed on as they are: the hostile guest wants them.
cfg_locate:
	pushl %eax
	cmpb $0, cfg_method
	jne 1f
	movl %ebx, %eax
	andl $0xffff, %eax
	shll $8, %eax
	movb %cl, %al
	andb $0xfc, %al
	orl $0x80000000, %eax
	movw $0xcf8, %dx
	outl %eax, %dx
	movw %cx, %dx
	andw $3, %dx
	addw $0xcfc, %dx
	xorl %eax, %eax			# ZF
	popl %eax
	ret
1:	movl %ebx, %edi
	andl $0xffff, %edi
	shll $12, %edi
	movl %ecx, %eax
	andl $0xfff, %eax
	addl %eax, %edi
	addl $ECAM_BASE, %edi		# never zero: ZF clear
	popl %eax
	ret

# cfg_read{8,16,32}: ebx = bdf, ecx = register -> eax (zero-extended).
	.globl cfg_read8, cfg_read16, cfg_read32
cfg_read8:
	pushl %edx
	pushl %edi
	xorl %eax, %eax
	call cfg_locate
	jnz 1f
	inb %dx, %al
	jmp 2f
1:	movb (%edi), %al
2:	popl %edi
	popl %edx
	ret

cfg_read16:
	pushl %edx
	pushl %edi
	xorl %eax, %eax
	call cfg_locate
	jnz 1f
	inw %dx, %ax
	jmp 2f
1:	movw (%edi), %ax
2:	popl %edi
	popl %edx
	ret

cfg_read32:
	pushl %edx
	pushl %edi
	call cfg_locate
	jnz 1f
	inl %dx, %eax
	jmp 2f
1:	movl (%edi), %eax
2:	popl %edi
	popl %edx
	ret

# cfg_write{8,16,32}: ebx = bdf, ecx = register, eax = value.
	.globl cfg_write8, cfg_write16, cfg_write32
cfg_write8:
	pushl %edx
	pushl %edi
	call cfg_locate
	jnz 1f
	outb %al, %dx
	jmp 2f
1:	movb %al, (%edi)
2:	popl %edi
	popl %edx
	ret

cfg_write16:
	pushl %edx
	pushl %edi
	call cfg_locate
	jnz 1f
	outw %ax, %dx
	jmp 2f
1:	movw %ax, (%edi)
2:	popl %edi
	popl %edx
	ret

cfg_write32:
	pushl %edx
	pushl %edi
	call cfg_locate
	jnz 1f
	outl %eax, %dx
	jmp 2f
1:	movl %eax, (%edi)
2:	popl %edi
	popl %edx
	ret

	.data
	.globl cfg_method, code_base, idt_desc
cfg_method:	.byte 0		# 0: CF8/CFC, 1: ECAM
code_base:	.byte 0		# added to FAILP codes: 0 for CF8, 32 for ECAM
	.balign 8
idt:	.fill 32 * 8, 1, 0
	.balign 4
	.word 0
idt_desc:
	.word 32 * 8 - 1
	.long idt
