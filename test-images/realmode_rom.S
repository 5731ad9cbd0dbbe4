/*
 * realmode_rom.bin: a 64 KiB BIOS-style ROM for 0xF0000-0xFFFFF that tests
 * real-address-mode execution.  Boot it as the firmware (qemu -bios):
 * the CPU starts at F000:FFF0 (with the CS base still 0xFFFF0000 until the
 * first far jump), which jumps to rom_start.
 *
 *  - segment arithmetic (seg*16 + off), 16-bit offset wrap-around
 *  - operand-size (66) and address-size (67) prefixes in 16-bit code
 *  - string instructions with REP/REPE/REPNE, forwards and backwards,
 *    and with 32-bit addressing
 *  - MUL/IMUL/DIV/IDIV in 8, 16 and 32 bits, with CF/OF
 *  - BCD: DAA, DAS, AAA, AAS, AAM, AAD (SDM vol. 2 pseudo-code)
 *  - INT n through an IVT we install at 0:0, exceptions in real mode
 *    (#DE, #UD push the IP of the faulting instruction; INT3 the next one),
 *    far CALL/RET into another segment
 *  - switching to 32-bit protected mode (flat and based segments) and
 *    back to real mode through a 16-bit protected-mode segment
 *
 * Output goes to port 0xE9, one line per check in the same format as the C
 * images ("ok   <what> = <value>"), and the ROM exits through port 0xF4
 * (0 = PASS, 1 = FAIL).  RAM use: stack at 0:7000 (0:6000 in protected
 * mode), variables at 0:0600, scratch buffers at 0:8000, 1000:0000,
 * 0x12340 and 0x200000.
 *
 * The ROM is linked at 0xF0000, so a label's value is its linear address;
 * O(label) is its offset in segment F000, which 16-bit code needs.  The
 * assembler can only compute label - rom_base when both are in the same
 * section, so everything but the reset vector lives in .text: code in
 * subsection 0, strings in subsection 1, the GDT in subsection 2.
 */
#define O(x) ((x)-rom_base)

/* RAM variables (accessed with an SS: override; SS is 0 in real mode). */
#define FAILS    0x600
#define CHECKS   0x602
#define I60_IP   0x610
#define I60_CS   0x612
#define I60_FL   0x614
#define I60_INFL 0x616
#define DE_IP    0x618
#define UD_IP    0x61A
#define BP_IP    0x61C
#define DE_COUNT 0x61E
#define PM_VAL   0x620
#define PM_CR0   0x624
#define PM_HIGH  0x628
#define FAR_CS   0x62C
#define SAVED_SP 0x630
#define NOVAL    0x632

/* CHECK "description", expected: compare EAX with the expected value,
 * print one line, count failures. */
    .macro CHECK desc, expected
    movl $(\expected), %ebx
    movw $O(77f), %si
    call check_eax
    .pushsection .text, 1
77: .asciz "\desc"
    .popsection
    .endm

/* CHECKA "description", expected: the same for addresses, whose value is
 * not printed when it matches (it moves whenever the ROM code changes). */
    .macro CHECKA desc, expected
    movl $(\expected), %ebx
    movw $O(77f), %si
    movw $1, %ss:NOVAL
    call check_eax
    .pushsection .text, 1
77: .asciz "\desc"
    .popsection
    .endm

/* Print a literal string. */
    .macro PRINT text
    movw $O(78f), %si
    call puts
    .pushsection .text, 1
78: .asciz "\text"
    .popsection
    .endm

/* EAX = FLAGS & mask */
    .macro FLAGS mask
    pushfl
    popl %eax
    andl $(\mask), %eax
    .endm

#define CF 0x001
#define PF 0x004
#define AF 0x010
#define ZF 0x040
#define SF 0x080
#define OF 0x800

    .code16
    .text 0
    .globl rom_base, rom_start
rom_base:
rom_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ss
    movw $0x7000, %sp
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss:FAILS
    movw %ax, %ss:CHECKS
    movw %ax, %ss:NOVAL

    PRINT "realmode_rom: real-address mode from a 64 KiB ROM\n"
    movw %cs, %ax
    movzwl %ax, %eax
    CHECK "CS after the far jump from the reset vector", 0xF000
    movl %cr0, %eax
    andl $1, %eax
    CHECK "CR0.PE at reset", 0

    call test_segments
    call test_prefixes
    call test_strings
    call test_muldiv
    call test_bcd
    call test_interrupts
    call test_protected_mode

    /* Done: the final PASS/FAIL line and the exit code on port 0xF4. */
    cmpw $0, %ss:FAILS
    jne 1f
    PRINT "PASS realmode_rom\n"
    movb $0, %al
    outb %al, $0xF4
    jmp halt
1:  PRINT "FAIL realmode_rom: "
    movzwl %ss:FAILS, %eax
    call print_dec
    PRINT " of "
    movzwl %ss:CHECKS, %eax
    call print_dec
    PRINT " checks failed\n"
    movb $1, %al
    outb %al, $0xF4
halt:
    hlt
    jmp halt

/* ------------------------------------------------------------------------ */
/* Console helpers (16-bit). */

/* puts: print the NUL-terminated string at CS:SI. */
puts:
    pushw %ax
    pushw %si
1:  movb %cs:(%si), %al
    testb %al, %al
    jz 2f
    outb %al, $0xE9
    incw %si
    jmp 1b
2:  popw %si
    popw %ax
    ret

/* print_hex: EAX as 0x followed by hex digits without leading zeros. */
print_hex:
    pushal
    movl %eax, %ebx
    movb $'0', %al
    outb %al, $0xE9
    movb $'x', %al
    outb %al, $0xE9
    movw $8, %cx
    xorw %dx, %dx               /* DX=1 once a digit has been printed */
1:  roll $4, %ebx
    movb %bl, %al
    andb $0x0F, %al
    jnz 2f
    testw %dx, %dx
    jnz 2f
    cmpw $1, %cx                /* always print the last digit */
    jne 4f
2:  movw $1, %dx
    addb $'0', %al
    cmpb $'9', %al
    jbe 3f
    addb $('a' - '9' - 1), %al
3:  outb %al, $0xE9
4:  loop 1b
    popal
    ret

/* print_dec: EAX (small, unsigned) in decimal. */
print_dec:
    pushal
    movl $10, %ecx
    xorw %bx, %bx
1:  xorl %edx, %edx
    divl %ecx
    pushw %dx
    incw %bx
    testl %eax, %eax
    jnz 1b
2:  popw %ax
    addb $'0', %al
    outb %al, $0xE9
    decw %bx
    jnz 2b
    popal
    ret

/* check_eax: EAX = actual, EBX = expected, CS:SI = description; with
 * NOVAL set (by CHECKA) the value is not printed on success. */
check_eax:
    pushal
    incw %ss:CHECKS
    cmpl %ebx, %eax
    jne 1f
    pushw %si
    movw $O(msg_ok), %si
    call puts
    popw %si
    call puts
    cmpw $0, %ss:NOVAL
    jne 2f
    movw $O(msg_eq), %si
    call puts
    call print_hex
2:  movb $'\n', %al
    outb %al, $0xE9
    movw $0, %ss:NOVAL
    popal
    ret
1:  incw %ss:FAILS
    movw $0, %ss:NOVAL
    pushw %si
    movw $O(msg_fail), %si
    call puts
    popw %si
    call puts
    movw $O(msg_eq), %si
    call puts
    call print_hex
    movw $O(msg_expected), %si
    call puts
    movl %ebx, %eax
    call print_hex
    movb $'\n', %al
    outb %al, $0xE9
    popal
    ret

    .text 1
msg_ok:       .asciz "ok   "
msg_fail:     .asciz "FAIL realmode_rom: "
msg_eq:       .asciz " = "
msg_expected: .asciz ", expected "
    .text 0

/* ------------------------------------------------------------------------ */
test_segments:
    PRINT "-- segment arithmetic\n"
    movw $0x1000, %ax
    movw %ax, %ds
    movw $0x1234, 0x0234        /* linear 0x10234 */
    movw $0x1023, %ax
    movw %ax, %es
    movzwl %es:0x0004, %eax
    CHECK "word at 1000:0234 read as 1023:0004", 0x1234
    movw $0x1020, %ax
    movw %ax, %es
    movzwl %es:0x0034, %eax
    CHECK "... and as 1020:0034", 0x1234
    /* [bx+disp] wraps at 64 KiB with 16-bit addressing. */
    movw $0xBEEF, 0x0040
    movw $0xFFF0, %bx
    movzwl 0x50(%bx), %eax
    CHECK "[bx+0x50] with bx=0xFFF0 reads offset 0x0040", 0xBEEF
    /* BP-based addressing defaults to SS. */
    movw $0x7000, %bp
    movw $0x1357, %ss:0x6FF0
    movzwl -0x10(%bp), %eax
    CHECK "[bp-0x10] uses SS", 0x1357
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    ret

/* ------------------------------------------------------------------------ */
test_prefixes:
    PRINT "-- operand and address size prefixes\n"
    movl $0x12345678, %eax
    addl $0x11111111, %eax
    CHECK "32-bit add (66 prefix)", 0x23456789
    movl $0x0001FFFF, %eax
    incw %ax                    /* 16-bit: no carry into bit 16 */
    CHECK "incw on 0x0001FFFF leaves the upper half", 0x00010000
    movl $0xCAFEF00D, 0x8010
    movl $0x8000, %esi
    movl $4, %ecx
    movl (%esi,%ecx,4), %eax    /* 67 prefix: 32-bit addressing */
    CHECK "[esi+ecx*4] (67 prefix)", 0xCAFEF00D
    movl $0x10000, %eax
    movl $0x20000, %ebx
    leal 0x12345(%eax,%ebx,2), %edx
    movl %edx, %eax
    CHECK "lea 0x12345(eax,ebx,2), 32-bit", 0x62345
    movw $0xFFF8, %bx
    movw $0x0010, %si
    leaw 0x10(%bx,%si), %ax
    movzwl %ax, %eax
    CHECK "lea 0x10(bx,si) wraps at 16 bits", 0x18
    movw $0x80, %ax
    movsbl %al, %eax
    CHECK "movsx byte 0x80 to 32 bits", 0xFFFFFF80
    movl $0x11223344, %eax
    bswapl %eax
    CHECK "bswap", 0x44332211
    movl $0x12345678, %eax
    movl $0x9ABCDEF0, %ebx
    shldl $8, %ebx, %eax
    CHECK "shld $8", 0x3456789A
    movw %sp, %cx
    pushl $0x89ABCDEF
    movw %sp, %ax
    subw %ax, %cx
    popl %eax
    CHECK "pushl/popl 32-bit in real mode", 0x89ABCDEF
    movzwl %cx, %eax
    CHECK "... pushl moved SP by", 4
    ret

/* ------------------------------------------------------------------------ */
test_strings:
    PRINT "-- string instructions\n"
    /* rep movsb the ROM string to 0:8100 (DS = CS for the source). */
    pushw %ds
    movw %cs, %ax
    movw %ax, %ds
    movw $O(str_hello), %si
    movw $0x8100, %di
    movw $(str_hello_end - str_hello), %cx
    rep movsb
    popw %ds
    movzwl %di, %eax
    CHECK "rep movsb: DI after copying 14 bytes", 0x810E
    movzwl %cx, %eax
    CHECK "rep movsb: CX", 0
    /* repe cmpsb ROM vs RAM copy: equal all the way. */
    pushw %ds
    movw %cs, %ax
    movw %ax, %ds
    movw $O(str_hello), %si
    movw $0x8100, %di
    movw $(str_hello_end - str_hello), %cx
    repe cmpsb
    popw %ds
    FLAGS ZF
    CHECK "repe cmpsb on equal strings: ZF", ZF
    /* repe cmpsb stops at the first difference (index 6, the space). */
    movb $'W', 0x8106
    pushw %ds
    movw %cs, %ax
    movw %ax, %ds
    movw $O(str_hello), %si
    movw $0x8100, %di
    movw $(str_hello_end - str_hello), %cx
    repe cmpsb
    popw %ds
    movzwl %cx, %eax
    CHECK "repe cmpsb stops after the mismatch at index 6: CX left", (14-7)
    /* repne scasb: strlen of the copy (NUL at index 13). */
    movw $0x8100, %di
    movw $0xFFFF, %cx
    xorb %al, %al
    repne scasb
    notw %cx
    decw %cx
    movzwl %cx, %eax
    CHECK "repne scasb strlen", 13
    /* rep stosw. */
    movw $0x8200, %di
    movw $0xA5A5, %ax
    movw $8, %cx
    rep stosw
    movzwl 0x820E, %eax
    CHECK "rep stosw: last word", 0xA5A5
    movzwl %di, %eax
    CHECK "rep stosw: DI", 0x8210
    /* Overlapping copy upwards needs DF=1: 0x8100..0x810B -> 0x8102.. */
    movw $0x810A, %si
    movw $0x810C, %di
    movw $6, %cx
    std
    rep movsw
    cld
    movw %si, %dx               /* CHECK itself uses SI */
    movzwl 0x8102, %eax
    CHECK "std + rep movsw (overlapping, backwards)", 0x6548   /* "He" */
    movzwl %dx, %eax
    CHECK "... SI after", 0x80FE
    /* 32-bit addressing: rep movsb with ESI/EDI/ECX (67 prefix). */
    movl $0x8100, %esi
    movl $0x8300, %edi
    movl $5, %ecx
    addr32 rep movsb
    movl %edi, %eax
    CHECK "addr32 rep movsb: EDI", 0x8305
    movl %ecx, %eax
    CHECK "addr32 rep movsb: ECX", 0
    movzbl 0x8304, %eax
    CHECK "addr32 rep movsb: byte 4", 'l'
    /* lodsw */
    movw $0x8200, %si
    lodsw
    movzwl %ax, %eax
    CHECK "lodsw", 0xA5A5
    ret

    .text 1
str_hello:
    .asciz "Hello, world!"
str_hello_end:
    .text 0

/* ------------------------------------------------------------------------ */
test_muldiv:
    PRINT "-- mul and div\n"
    movb $200, %al
    movb $3, %bl
    mulb %bl
    pushfl                      /* flags of the mul, checked after AX */
    movzwl %ax, %eax
    CHECK "mulb 200*3", 600
    popl %eax
    andl $(CF|OF), %eax
    CHECK "... CF|OF (AH != 0)", (CF|OF)
    movw $0x1234, %ax
    movw $0x5678, %bx
    mulw %bx
    movzwl %ax, %eax
    CHECK "mulw 0x1234*0x5678: AX", 0x0060
    movzwl %dx, %eax
    CHECK "... DX", 0x0626
    movw $-3, %ax
    movw $7, %bx
    imulw %bx
    pushfl
    movzwl %ax, %eax
    CHECK "imulw -3*7: AX", 0xFFEB
    movzwl %dx, %eax
    CHECK "... DX", 0xFFFF
    popl %eax
    andl $(CF|OF), %eax
    CHECK "... CF|OF (fits in AX)", 0
    movw $7, %bx
    imulw $-5, %bx, %cx
    movzwl %cx, %eax
    CHECK "imulw $-5, bx=7", 0xFFDD
    movw $1, %dx
    xorw %ax, %ax
    movw $0x10, %cx
    divw %cx
    movzwl %ax, %eax
    CHECK "divw 0x10000/0x10", 0x1000
    movw $-100, %ax
    cwtd
    movw $7, %cx
    idivw %cx
    pushw %dx
    movzwl %ax, %eax
    CHECK "idivw -100/7: quotient", 0xFFF2
    popw %ax
    movzwl %ax, %eax
    CHECK "... remainder", 0xFFFE
    movw $1000, %ax
    movb $7, %bl
    divb %bl
    movzwl %ax, %eax
    CHECK "divb 1000/7: AH=rem, AL=quot", 0x068E
    movl $0x12345678, %eax
    movl $0x9ABCDEF0, %ebx
    mull %ebx
    pushl %edx
    CHECK "mull 0x12345678*0x9ABCDEF0: EAX", 0x242D2080
    popl %eax
    CHECK "... EDX", 0x0B00EA4E
    movl $1, %edx
    xorl %eax, %eax
    movl $3, %ecx
    divl %ecx
    pushl %edx
    CHECK "divl 0x100000000/3: EAX", 0x55555555
    popl %eax
    CHECK "... EDX", 1
    ret

/* ------------------------------------------------------------------------ */
test_bcd:
    PRINT "-- BCD adjust instructions\n"
    movb $0x19, %al
    addb $0x28, %al             /* 0x41, AF=1 */
    daa
    movzbl %al, %eax
    CHECK "0x19 + 0x28, daa", 0x47
    movb $0x99, %al
    addb $0x01, %al
    daa
    pushfl
    movzbl %al, %eax
    CHECK "0x99 + 0x01, daa", 0x00
    popl %eax
    andl $CF|ZF, %eax
    CHECK "... CF|ZF", CF|ZF
    movb $0x42, %al
    subb $0x19, %al
    das
    movzbl %al, %eax
    CHECK "0x42 - 0x19, das", 0x23
    movb $0x10, %al
    subb $0x20, %al
    das
    pushfl
    movzbl %al, %eax
    CHECK "0x10 - 0x20, das", 0x90
    popl %eax
    andl $CF, %eax
    CHECK "... CF", CF
    movw $0x0009, %ax
    addb $8, %al                /* AL=0x11, AF=1 */
    aaa
    pushfl
    movzwl %ax, %eax
    CHECK "9 + 8, aaa (AX)", 0x0107
    popl %eax
    andl $CF|AF, %eax
    CHECK "... CF|AF", CF|AF
    movw $0x00FA, %ax           /* AL > 0xF9: AX + 0x106 carries into AH twice */
    aaa
    movzwl %ax, %eax
    CHECK "aaa with AL=0xFA (AX += 0x106)", 0x0200
    movw $0x0502, %ax
    subb $5, %al                /* AL=0xFD, AF=1 */
    aas
    movzwl %ax, %eax
    CHECK "0x0502: 2 - 5, aas (AX)", 0x0407
    movw $0x004F, %ax
    aam
    pushfl
    movzwl %ax, %eax
    CHECK "aam on 79", 0x0709
    popl %eax
    andl $ZF|SF|PF, %eax
    CHECK "... ZF|SF|PF (of AL=9)", PF
    movw $0x004F, %ax
    aam $16
    movzwl %ax, %eax
    CHECK "aam $16 on 0x4F", 0x040F
    movw $0x0709, %ax
    aad
    movzwl %ax, %eax
    CHECK "aad on 0x0709", 0x004F
    movw $0x040F, %ax
    aad $16
    movzwl %ax, %eax
    CHECK "aad $16 on 0x040F", 0x004F
    ret

/* ------------------------------------------------------------------------ */
/* Install IVT entry AL -> F000:BX. */
set_vector:
    pushw %di
    movzbw %al, %di
    shlw $2, %di
    movw %bx, %ss:(%di)
    movw $0xF000, %ss:2(%di)
    popw %di
    ret

test_interrupts:
    PRINT "-- interrupts and exceptions through the IVT\n"
    movb $0x60, %al
    movw $O(int60_handler), %bx
    call set_vector
    movb $0x00, %al
    movw $O(de_handler), %bx
    call set_vector
    movb $0x06, %al
    movw $O(ud_handler), %bx
    call set_vector
    movb $0x03, %al
    movw $O(bp_handler), %bx
    call set_vector
    movw $0, %ss:DE_COUNT

    /* Mask both 8259s so IF=1 is safe, then enter the INT with IF=1: the
     * handler must run with IF=0 and IRET must bring IF=1 back. */
    movb $0xFF, %al
    outb %al, $0x21
    outb %al, $0xA1
    movw %sp, %di
    movw $0x1111, %ax
    stc
    sti
    int $0x60
int60_after:
    pushfl
    cli
    movzwl %ax, %eax
    CHECK "int $0x60: AX set by the handler", 0x2222
    popl %eax
    andl $(CF|0x200), %eax
    CHECK "... after iret: CF (cleared by the handler) and IF", 0x200
    movzwl %ss:I60_IP, %eax
    CHECKA "... pushed IP = after the int", O(int60_after)
    movzwl %ss:I60_CS, %eax
    CHECK "... pushed CS", 0xF000
    movzwl %ss:I60_FL, %eax
    andl $(CF|0x200), %eax
    CHECK "... pushed FLAGS had CF=1 and IF=1", (CF|0x200)
    movzwl %ss:I60_INFL, %eax
    andl $0x300, %eax
    CHECK "... IF and TF clear in the handler", 0
    movw %sp, %ax
    subw %di, %ax
    movzwl %ax, %eax
    CHECK "... SP restored by iret", 0

    movb $0, %bl
de_insn:
    divb %bl                    /* #DE; the handler skips these 2 bytes */
    movzwl %ss:DE_IP, %eax
    CHECKA "#DE (div by 0): pushed IP = the div", O(de_insn)
    movw $0x004F, %ax
aam0_insn:
    aam $0                      /* also #DE */
    movzwl %ss:DE_IP, %eax
    CHECKA "#DE (aam $0): pushed IP = the aam", O(aam0_insn)
    movzwl %ss:DE_COUNT, %eax
    CHECK "#DE count", 2
ud_insn:
    ud2
    movzwl %ss:UD_IP, %eax
    CHECKA "#UD (ud2): pushed IP = the ud2", O(ud_insn)
    int3
bp_after:
    movzwl %ss:BP_IP, %eax
    CHECKA "#BP (int3): pushed IP = after the int3", O(bp_after)

    /* Far call into segment EF00 (same bytes, different CS). */
    lcall $0xEF00, $(O(far_func) + 0x1000)
    movzwl %ss:FAR_CS, %eax
    CHECK "far call: CS in the callee", 0xEF00
    movw %cs, %ax
    movzwl %ax, %eax
    CHECK "far return: CS back", 0xF000
    ret

far_func:
    movw %cs, %ax
    movw %ax, %ss:FAR_CS
    lret

int60_handler:
    pushw %bp
    movw %sp, %bp
    movw 2(%bp), %bx            /* [bp+2] IP, [bp+4] CS, [bp+6] FLAGS */
    movw %bx, %ss:I60_IP
    movw 4(%bp), %bx
    movw %bx, %ss:I60_CS
    movw 6(%bp), %bx
    movw %bx, %ss:I60_FL
    pushfw
    popw %bx
    movw %bx, %ss:I60_INFL
    andw $~CF, 6(%bp)           /* report "success" through the caller's CF */
    movw $0x2222, %ax
    popw %bp
    iret

de_handler:
    pushw %bp
    movw %sp, %bp
    movw 2(%bp), %bx
    movw %bx, %ss:DE_IP
    addw $2, 2(%bp)             /* both #DE sources here are 2 bytes long */
    incw %ss:DE_COUNT
    popw %bp
    iret

ud_handler:
    pushw %bp
    movw %sp, %bp
    movw 2(%bp), %bx
    movw %bx, %ss:UD_IP
    addw $2, 2(%bp)
    popw %bp
    iret

bp_handler:
    pushw %bp
    movw %sp, %bp
    movw 2(%bp), %bx
    movw %bx, %ss:BP_IP
    popw %bp
    iret

/* ------------------------------------------------------------------------ */
test_protected_mode:
    PRINT "-- protected mode and back\n"
    movl $0, %ss:PM_VAL
    movw %sp, %ss:SAVED_SP      /* our return address is on this stack */
    cli
    lgdtl %cs:O(gdt_desc)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $pm32_entry    /* flat 32-bit code: the label is linear */

    .code32
pm32_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $0x6000, %esp          /* a separate stack: keep the 16-bit one intact */
    /* Flat 32-bit data: memory above 1 MiB (bit 20 clear, so A20 is moot). */
    movl $0xDEADBEEF, 0x200000
    movl 0x200000, %eax
    movl %eax, PM_VAL
    movl %cr0, %eax
    movl %eax, PM_CR0
    /* A data segment with base 0x12340. */
    movw $0x20, %ax
    movw %ax, %fs
    movl $0xFEEDF00D, %fs:0
    /* A 32-bit stack push/pop at ESP 0x7000 and a 32-bit call. */
    call 1f
pm_after_call:
    jmp 2f
1:  movl (%esp), %eax
    movl %eax, PM_HIGH
    ret
2:
    /* Back: 16-bit code segment (base 0xF0000, limit 0xFFFF) first. */
    ljmp $0x18, $O(pm16_entry)

    .code16
pm16_entry:
    movw $0x28, %ax             /* 16-bit data, base 0, limit 0xFFFF */
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl %cr0, %eax
    andl $~1, %eax
    movl %eax, %cr0
    ljmp $0xF000, $O(rm_back)
rm_back:
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movw %ss:SAVED_SP, %sp
    PRINT "     back in real mode\n"
    movl %ss:PM_VAL, %eax
    CHECK "32-bit PM: dword at 0x200000", 0xDEADBEEF
    movl %ss:PM_CR0, %eax
    andl $1, %eax
    CHECK "32-bit PM: CR0.PE", 1
    movl %ss:PM_HIGH, %eax
    CHECKA "32-bit PM: return address of a near call", pm_after_call
    movw $0x1234, %ax
    movw %ax, %fs
    movl %fs:0, %eax
    CHECK "PM write via base 0x12340, read at 1234:0000", 0xFEEDF00D
    movl %cr0, %eax
    andl $1, %eax
    CHECK "real mode again: CR0.PE", 0
    movw $0x5555, %ax
    int $0x60
    movzwl %ax, %eax
    CHECK "int $0x60 through the IVT still works", 0x2222
    ret

/* The GDT (accessed bits preset: the CPU would try to set them in ROM). */
    .text 2
    .balign 8
gdt:
    .quad 0
    .quad 0x00CF9B000000FFFF    /* 0x08: code, flat, 32-bit */
    .quad 0x00CF93000000FFFF    /* 0x10: data, flat, 32-bit */
    .quad 0x00009B0F0000FFFF    /* 0x18: code, base 0xF0000, limit 0xFFFF, 16-bit */
    .quad 0x00CF93012340FFFF    /* 0x20: data, base 0x12340, 4 GiB */
    .quad 0x000093000000FFFF    /* 0x28: data, base 0, limit 0xFFFF, 16-bit */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt                   /* linear address (the ROM is linked at 0xF0000) */

/* ------------------------------------------------------------------------ */
/* The reset vector at F000:FFF0 (linear 0xFFFF0, and 0xFFFFFFF0 at reset).
 * rom_start is the first byte of the ROM (rom.ld checks), i.e. F000:0000. */
    .section .reset, "ax"
    .globl reset_vector
reset_vector:
    ljmp $0xF000, $0
