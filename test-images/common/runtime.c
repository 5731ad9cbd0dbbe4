/*
 * Shared runtime: console, printf, checks, GDT/IDT/TSS setup and the trap
 * dispatcher.  See runtime.h for the conventions.
 */
#include "runtime.h"

u64 gdt[GDT_ENTRIES] ALIGNED(8);
u64 idt[256] ALIGNED(8);
struct tss_with_iomap kernel_tss ALIGNED(128);
trap_handler trap_handlers[256];
struct frame *current_frame;
struct frame last_trap;
u32 last_trap_frame_addr;
volatile int catch_armed;
struct jmp_buf catch_buf;
u8 user_stack[8192] ALIGNED(16);
int checks_failed;
int checks_run;

/* ------------------------------------------------------------------------ */
/* Small libc replacements (gcc may also emit calls to memset/memcpy). */

void *memset(void *d, int c, u32 n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, u32 n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, u32 n)
{
    const u8 *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p < *q ? -1 : 1;
    return 0;
}

u32 strlen(const char *s)
{
    u32 n = 0;
    while (s[n])
        n++;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Console on port 0xE9 and exit through isa-debug-exit on port 0xF4. */

void putc(char c) { outb(0xE9, (u8)c); }

void puts(const char *s)
{
    while (*s)
        putc(*s++);
}

void exit(int code)
{
    outb(0xF4, (u8)code);
    /* Only reached without an isa-debug-exit device: stop here for good. */
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* Print an unsigned number in base 10 or 16, padded to `width` with `pad`. */
static void print_num(u32 v, int base, int width, char pad, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char buf[12];
    int n = 0;
    do {
        buf[n++] = digits[v % (u32)base];
        v /= (u32)base;
    } while (v);
    while (width-- > n)
        putc(pad);
    while (n)
        putc(buf[--n]);
}

/* A tiny printf: %d %u %x %X %c %s %p %%, an optional '0' flag, a width, and
 * a '#' flag for a 0x prefix on %x.  Enough for test output, nothing more. */
static void vprintf(const char *fmt, __builtin_va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            putc(*fmt);
            continue;
        }
        fmt++;
        int alt = 0, width = 0;
        char pad = ' ';
        if (*fmt == '#') {
            alt = 1;
            fmt++;
        }
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l')          /* accepted and ignored: everything is 32-bit */
            fmt++;
        switch (*fmt) {
        case 'd': {
            int v = __builtin_va_arg(ap, int);
            if (v < 0) {
                putc('-');
                print_num(-(u32)v, 10, width ? width - 1 : 0, pad, 0);
            } else {
                print_num((u32)v, 10, width, pad, 0);
            }
            break;
        }
        case 'u':
            print_num(__builtin_va_arg(ap, u32), 10, width, pad, 0);
            break;
        case 'x':
        case 'X':
            if (alt)
                puts("0x");
            print_num(__builtin_va_arg(ap, u32), 16, width, pad, *fmt == 'X');
            break;
        case 'p':
            puts("0x");
            print_num(__builtin_va_arg(ap, u32), 16, 8, '0', 0);
            break;
        case 'c':
            putc((char)__builtin_va_arg(ap, int));
            break;
        case 's': {
            const char *s = __builtin_va_arg(ap, const char *);
            int len = (int)strlen(s);
            while (width-- > len)
                putc(' ');
            puts(s);
            break;
        }
        case '%':
            putc('%');
            break;
        case 0:
            return;
        default:
            putc('%');
            putc(*fmt);
            break;
        }
    }
}

void printf(const char *fmt, ...)
{
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    vprintf(fmt, ap);
    __builtin_va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Checks. */

void check(int cond, const char *desc)
{
    checks_run++;
    if (cond) {
        printf("ok   %s\n", desc);
    } else {
        checks_failed++;
        printf("FAIL %s: %s\n", test_name, desc);
    }
}

void check_eq(const char *desc, u32 actual, u32 expected)
{
    checks_run++;
    if (actual == expected) {
        printf("ok   %s = %#x\n", desc, actual);
    } else {
        checks_failed++;
        printf("FAIL %s: %s = %#x, expected %#x\n", test_name, desc, actual, expected);
    }
}

void check_dec(const char *desc, u32 actual, u32 expected)
{
    checks_run++;
    if (actual == expected) {
        printf("ok   %s = %u\n", desc, actual);
    } else {
        checks_failed++;
        printf("FAIL %s: %s = %u, expected %u\n", test_name, desc, actual, expected);
    }
}

void check_addr(const char *desc, u32 actual, u32 expected)
{
    checks_run++;
    if (actual == expected) {
        printf("ok   %s\n", desc);
    } else {
        checks_failed++;
        printf("FAIL %s: %s: got %#x, expected %#x\n", test_name, desc, actual, expected);
    }
}

void check_trap(const char *desc, u32 vector, u32 err, u32 eip, const char *eip_what)
{
    checks_run++;
    struct frame *t = &last_trap;
    if (t->vector == vector && t->err == err && t->eip == eip) {
        printf("ok   %s: vec=%u err=%#x eip=%s\n", desc, vector, err, eip_what);
    } else {
        checks_failed++;
        printf("FAIL %s: %s: got vec=%u err=%#x eip=%#x, expected vec=%u err=%#x eip=%#x (%s)\n",
               test_name, desc, t->vector, t->err, t->eip, vector, err, eip, eip_what);
    }
}

void note(const char *fmt, ...)
{
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    puts("     ");
    vprintf(fmt, ap);
    putc('\n');
    __builtin_va_end(ap);
}

void fail(const char *fmt, ...)
{
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    printf("FAIL %s: ", test_name);
    vprintf(fmt, ap);
    putc('\n');
    __builtin_va_end(ap);
    exit(1);
}

void finish(void)
{
    if (checks_failed) {
        printf("FAIL %s: %d of %d checks failed\n", test_name, checks_failed, checks_run);
        exit(1);
    }
    printf("PASS %s\n", test_name);
    exit(0);
}

/* ------------------------------------------------------------------------ */
/* Descriptor tables. */

u64 make_desc(u32 base, u32 limit, u8 access, u8 flags)
{
    u64 d = 0;
    d |= (u64)(limit & 0xFFFF);
    d |= (u64)(base & 0xFFFFFF) << 16;
    d |= (u64)access << 40;
    d |= (u64)((limit >> 16) & 0xF) << 48;
    d |= (u64)(flags & 0xF) << 52;
    d |= (u64)(base >> 24) << 56;
    return d;
}

void gdt_set(int index, u32 base, u32 limit, u8 access, u8 flags)
{
    gdt[index] = make_desc(base, limit, access, flags);
}

void idt_set(int vector, u32 offset, u16 selector, u8 type_attr)
{
    idt[vector] = (u64)(offset & 0xFFFF) | ((u64)selector << 16) |
                  ((u64)type_attr << 40) | ((u64)(offset >> 16) << 48);
}

void idt_set_stub(int vector, u8 type_attr)
{
    idt_set(vector, isr_stub_table[vector], SEL_KCODE, type_attr);
}

void ldt_load(u16 sel)
{
    __asm__ volatile("lldt %0" :: "r"(sel));
}

struct __attribute__((packed)) dtr { u16 limit; u32 base; };

/* Called from _start before kmain: flat GDT with ring 0/3 segments and a TSS,
 * an IDT whose every vector goes to the common dispatcher, and the 8259 PICs
 * masked (interrupts stay disabled anyway; this is belt and braces for tests
 * that run with IF=1 in v86 mode). */
void runtime_init(void)
{
    gdt[0] = 0;
    gdt_set(1, 0, 0xFFFFF, ACC_CODE_R, FL_G | FL_DB);
    gdt_set(2, 0, 0xFFFFF, ACC_DATA_W, FL_G | FL_DB);
    gdt_set(3, 0, 0xFFFFF, ACC_CODE_R | ACC_DPL3, FL_G | FL_DB);
    gdt_set(4, 0, 0xFFFFF, ACC_DATA_W | ACC_DPL3, FL_G | FL_DB);

    struct tss *t = &kernel_tss.tss;
    memset(&kernel_tss, 0, sizeof kernel_tss);
    t->esp0 = (u32)intr_stack_top;
    t->ss0 = SEL_KDATA;
    t->cr3 = read_cr3();
    t->iomap_base = sizeof(struct tss);            /* 104 */
    memset(kernel_tss.iomap, 0xFF, sizeof kernel_tss.iomap);  /* deny all ports */
    kernel_tss.iomap_end = 0xFF;
    /* Limit covers the bitmap and its terminator byte. */
    gdt_set(5, (u32)&kernel_tss, sizeof kernel_tss - 1, ACC_TSS32, 0);

    struct dtr g = { sizeof gdt - 1, (u32)gdt };
    __asm__ volatile("lgdt %0" :: "m"(g));
    reload_segments();
    __asm__ volatile("ltr %w0" :: "r"(SEL_TSS));

    for (int v = 0; v < 256; v++)
        idt_set_stub(v, GATE_INT32);
    idt_set_stub(SYSCALL_VECTOR, GATE_INT32 | GATE_DPL3);   /* int $0x80 from ring 3 */
    struct dtr i = { sizeof idt - 1, (u32)idt };
    __asm__ volatile("lidt %0" :: "m"(i));

    outb(0x21, 0xFF);
    outb(0xA1, 0xFF);
}

/* ------------------------------------------------------------------------ */
/* Trap dispatch. */

void catch_trap(struct frame *f)
{
    if (!catch_armed)
        fail("trap vec=%u eip=%#x with no catch armed", f->vector, f->eip);
    last_trap = *f;
    last_trap_frame_addr = (u32)f;
    catch_armed = 0;
    longjmp(&catch_buf, 1);
}

void trap_dispatch(struct frame *f)
{
    current_frame = f;
    if (trap_handlers[f->vector]) {
        trap_handlers[f->vector](f);
        return;
    }
    if (catch_armed)
        catch_trap(f);
    fail("unexpected exception vec=%u err=%#x eip=%#x cs=%#x eflags=%#x",
         f->vector, f->err, f->eip, f->cs & 0xFFFF, f->eflags);
}

int run_catch(void (*fn)(void))
{
    memset(&last_trap, 0xEE, sizeof last_trap);
    if (setjmp(&catch_buf) == 0) {
        catch_armed = 1;
        fn();
        catch_armed = 0;
        return 0;
    }
    return 1;
}

int run_user(void (*fn)(void), u32 eflags)
{
    memset(&last_trap, 0xEE, sizeof last_trap);
    if (setjmp(&catch_buf) == 0) {
        catch_armed = 1;
        enter_user((u32)fn, USER_STACK_TOP, eflags);
    }
    return 1;
}
