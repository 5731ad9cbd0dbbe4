/*
 * Shared runtime for the Leap multiboot test kernels.
 *
 * Everything here is freestanding: no libc, no system headers, so the images
 * build with a plain `gcc -m32` (no gcc-multilib needed).
 *
 * Output goes to the Bochs/QEMU debug console (port 0xE9), exit goes through
 * QEMU's isa-debug-exit device (port 0xF4): writing N makes QEMU exit with
 * status (N << 1) | 1.  Convention: 0 = PASS (status 1), 1 = FAIL (status 3).
 */
#ifndef LEAP_RUNTIME_H
#define LEAP_RUNTIME_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;

#define NULL ((void *)0)
#define NORETURN __attribute__((noreturn))
#define ALIGNED(n) __attribute__((aligned(n)))

#include "selectors.h"

/* Descriptor access bytes (P | DPL | S | type). */
#define ACC_CODE_R   0x9A   /* present, DPL0, code, execute/read */
#define ACC_CODE_X   0x98   /* present, DPL0, code, execute-only */
#define ACC_DATA_W   0x92   /* present, DPL0, data, read/write */
#define ACC_DATA_R   0x90   /* present, DPL0, data, read-only */
#define ACC_DATA_WD  0x96   /* present, DPL0, data, read/write, expand-down */
#define ACC_DPL3     0x60   /* OR in for DPL 3 */
#define ACC_TSS32    0x89   /* present, DPL0, 32-bit TSS (available) */
#define ACC_TSS32_BUSY 0x8B
#define ACC_LDT      0x82
/* Descriptor flags nibble (bits 55..52). */
#define FL_G  0x8           /* limit in 4 KiB units */
#define FL_DB 0x4           /* 32-bit segment */

/* IDT gate type/attribute bytes. */
#define GATE_INT32   0x8E   /* present, DPL0, 32-bit interrupt gate */
#define GATE_TRAP32  0x8F   /* present, DPL0, 32-bit trap gate */
#define GATE_TASK    0x85   /* present, DPL0, task gate */
#define GATE_DPL3    0x60

/* EFLAGS bits. */
#define FL_CF  (1u << 0)
#define FL_PF  (1u << 2)
#define FL_AF  (1u << 4)
#define FL_ZF  (1u << 6)
#define FL_SF  (1u << 7)
#define FL_TF  (1u << 8)
#define FL_IF  (1u << 9)
#define FL_DF  (1u << 10)
#define FL_OF  (1u << 11)
#define FL_IOPL(n) ((u32)(n) << 12)
#define FL_NT  (1u << 14)
#define FL_RF  (1u << 16)
#define FL_VM  (1u << 17)
#define FL_AC  (1u << 18)

/* ---------------------------------------------------------------------------
 * The 32-bit TSS.  The kernel TSS is followed by a full 8 KiB I/O permission
 * bitmap and the mandatory 0xFF terminator byte.
 */
struct tss {
    u32 link, esp0, ss0, esp1, ss1, esp2, ss2;
    u32 cr3, eip, eflags, eax, ecx, edx, ebx, esp, ebp, esi, edi;
    u32 es, cs, ss, ds, fs, gs, ldt;
    u16 trap, iomap_base;
} __attribute__((packed));

struct tss_with_iomap {
    struct tss tss;
    u8 iomap[8192];
    u8 iomap_end;           /* must be 0xFF */
} __attribute__((packed));

extern struct tss_with_iomap kernel_tss;
extern u64 gdt[GDT_ENTRIES];
extern u64 idt[256];

/* ---------------------------------------------------------------------------
 * The frame the common interrupt stub builds (start.S), lowest address first.
 * esp/ss exist only when the CPU changed privilege level; the v86_* fields
 * only when it interrupted virtual-8086 mode.
 */
struct frame {
    u32 edi, esi, ebp, esp_at_pusha, ebx, edx, ecx, eax;  /* pushal */
    u32 ds, es, fs, gs;          /* selectors live when the CPU entered the stub */
    u32 vector, err;             /* err is 0 for vectors without an error code */
    u32 eip, cs, eflags;         /* pushed by the CPU */
    u32 esp, ss;                 /* ... on a privilege change */
    u32 v86_es, v86_ds, v86_fs, v86_gs;   /* ... when leaving v86 mode */
};

/* A C handler for one vector; it may edit *f, and returning resumes via iret. */
typedef void (*trap_handler)(struct frame *f);
extern trap_handler trap_handlers[256];

/* Address of the frame of the trap being handled (set by the stub). */
extern struct frame *current_frame;

/* ---------------------------------------------------------------------------
 * setjmp/longjmp used to recover from an expected fault: a test arms a catch,
 * runs code that faults, and the trap dispatcher copies the frame into
 * `last_trap` and longjmps back.  longjmp also reloads the kernel segment
 * registers (the faulting code may have left odd ones) and restores EFLAGS.
 */
struct jmp_buf { u32 ebx, esi, edi, ebp, esp, eip, eflags; };
int setjmp(struct jmp_buf *jb) __attribute__((returns_twice));
void longjmp(struct jmp_buf *jb, int val) NORETURN;

extern struct frame last_trap;   /* copy of the frame of the last caught trap */
extern u32 last_trap_frame_addr; /* where that frame was on the stack */
extern volatile int catch_armed;
/* What the dispatcher does with a trap when a catch is armed: copy the frame
 * into last_trap and longjmp to catch_buf.  Custom handlers may call it. */
void catch_trap(struct frame *f) NORETURN;
extern struct jmp_buf catch_buf;

/* Run fn() at CPL0.  Returns 0 if it returned normally, 1 if a trap was caught
 * (details in last_trap).  Any vector without a trap_handlers[] entry is caught. */
int run_catch(void (*fn)(void));

/* Run fn() at CPL3 on the user stack with the given EFLAGS (IF must be 0).
 * The user code never returns: it ends with a trap (normally `int $0x80`,
 * which the runtime installs as a DPL3 gate), which is caught like above.
 * Returns 1 when a trap was caught (always, unless something is badly wrong). */
int run_user(void (*fn)(void), u32 eflags);
#define USER_STACK_TOP ((u32)user_stack + sizeof(user_stack))
extern u8 user_stack[8192];
#define SYSCALL_VECTOR 0x80

/* Low-level helpers in start.S. */
void enter_user(u32 eip, u32 esp, u32 eflags) NORETURN;
void reload_segments(void);       /* CS=KCODE, DS/ES/FS/GS/SS=KDATA */
extern u32 isr_stub_table[256];   /* entry points of the 256 stubs */
extern u8 kernel_stack_top[], intr_stack_top[];

/* ---------------------------------------------------------------------------
 * Descriptor helpers.
 */
u64 make_desc(u32 base, u32 limit, u8 access, u8 flags);
void gdt_set(int index, u32 base, u32 limit, u8 access, u8 flags);
void idt_set(int vector, u32 offset, u16 selector, u8 type_attr);
void idt_set_stub(int vector, u8 type_attr);   /* point a vector at its default stub */
void ldt_load(u16 sel);

/* ---------------------------------------------------------------------------
 * Port I/O, control registers, misc.
 */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 read_cr0(void) { u32 v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline u32 read_cr2(void) { u32 v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline u32 read_cr3(void) { u32 v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline u32 read_cr4(void) { u32 v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr0(u32 v) { __asm__ volatile("mov %0, %%cr0" :: "r"(v) : "memory"); }
static inline void write_cr2(u32 v) { __asm__ volatile("mov %0, %%cr2" :: "r"(v) : "memory"); }
static inline void write_cr3(u32 v) { __asm__ volatile("mov %0, %%cr3" :: "r"(v) : "memory"); }
static inline void write_cr4(u32 v) { __asm__ volatile("mov %0, %%cr4" :: "r"(v) : "memory"); }
static inline void invlpg(u32 addr) { __asm__ volatile("invlpg (%0)" :: "r"(addr) : "memory"); }
static inline u32 read_eflags(void) { u32 v; __asm__ volatile("pushfl; popl %0" : "=r"(v)); return v; }
static inline void write_eflags(u32 v) { __asm__ volatile("pushl %0; popfl" :: "r"(v) : "memory", "cc"); }
static inline u16 read_tr(void) { u16 v; __asm__ volatile("str %0" : "=r"(v)); return v; }
static inline u16 read_ldtr(void) { u16 v; __asm__ volatile("sldt %0" : "=r"(v)); return v; }
static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
static inline u64 rdmsr(u32 msr)
{
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((u64)hi << 32) | lo;
}
static inline void wrmsr(u32 msr, u64 v)
{
    __asm__ volatile("wrmsr" :: "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}
/* Turn a physical address into a pointer without letting gcc reason about it
 * (it warns about, or even traps on, small constant addresses such as 0). */
static inline void *phys(u32 addr)
{
    __asm__("" : "+r"(addr));
    return (void *)addr;
}

void *memset(void *d, int c, u32 n);
void *memcpy(void *d, const void *s, u32 n);
int memcmp(const void *a, const void *b, u32 n);
u32 strlen(const char *s);

/* ---------------------------------------------------------------------------
 * Console, checks and exit.
 */
void putc(char c);
void puts(const char *s);          /* no newline added */
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void exit(int code) NORETURN;

/* Name used in the PASS/FAIL lines; each image defines it. */
extern const char test_name[];

/* Every check prints exactly one line:
 *   "ok   <desc> = <value>"     (check_eq: value printed, must be stable)
 *   "ok   <desc>"               (check: no value, e.g. an address)
 *   "FAIL <name>: <desc> ..."   on failure (with actual/expected).
 * Failures are counted; finish() prints the final PASS/FAIL line and exits. */
void check(int cond, const char *desc);
void check_eq(const char *desc, u32 actual, u32 expected);
void check_dec(const char *desc, u32 actual, u32 expected);   /* same, printed in decimal */
void check_addr(const char *desc, u32 actual, u32 expected);  /* value not printed when ok */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* informational line */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2))) NORETURN;  /* fatal */
void finish(void) NORETURN;
extern int checks_failed, checks_run;

/* Verify that the last caught trap has this vector, error code and saved EIP
 * (prints one line: "ok   <desc>: vec=.. err=.. eip=<what>"). */
void check_trap(const char *desc, u32 vector, u32 err, u32 eip, const char *eip_what);

/* The entry point every image provides. */
int kmain(u32 magic, u32 mbi);

#endif
