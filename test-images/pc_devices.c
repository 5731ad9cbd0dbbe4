/*
 * pc_devices.elf: the PC board's chips, driven the way an OS drives them and
 * through real interrupts.
 *
 *   8259A PICs   ICW1-4 (vectors 0x20/0x28), IMR read-back, IRR/ISR through
 *                OCW3, a masked request held in IRR, EOI.
 *   8254 PIT     channel 0 at ~1 kHz on IRQ0 with `sti; hlt`, the ISR bit
 *                seen by the handler, read-back status, counter latches,
 *                channel 2 gated through port 0x61 (Linux's TSC calibration)
 *                and timed against one-shots on channels 0 and 1.
 *   MC146818 RTC status registers, the BCD clock, the periodic interrupt
 *                (1024 Hz) and the update-ended interrupt on IRQ8 through the
 *                slave PIC.
 *   16550A UART  COM1: scratch, divisor latch, IIR FIFO bits, loopback
 *                (data and modem lines), THRE interrupt on IRQ4.
 *   i8042        self and interface tests, command byte, keyboard echo,
 *                identify and reset, a keyboard byte on IRQ1.
 *   PCI          configuration mechanism #1: i440FX at 00.0, PIIX3 at 01.0,
 *                absent devices, 8/16-bit data port accesses.
 *   A20          port 0x92 (with the 8042 gate also closed): 1 MiB + X
 *                wraps to X.
 *
 * Everything printed is the same on any correct PC: no times, no counts
 * that depend on speed.  Waits are bounded by the TSC so a dead device
 * gives a FAIL line instead of a hang, except for the `sti; hlt` loops,
 * which only start after a first interrupt has arrived.
 */
#include "runtime.h"
#include "pc_devices.h"

const char test_name[] = "pc_devices";

/* ------------------------------------------------------------------------ */
/* Port I/O and time. */

static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

/* A wait that should take microseconds or milliseconds gives up after this
 * many TSC cycles (about a second or two on any emulator or host). */
#define WAIT_TSC 2000000000ull

static u64 wait_deadline;
static void wait_start(void) { wait_deadline = rdtsc() + WAIT_TSC; }
static int wait_expired(void) { return rdtsc() > wait_deadline; }

static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void pause(void) { __asm__ volatile("pause" ::: "memory"); }

/* With IF=1, wait until *counter reaches target (or the wait expires).
 * Returns with IF=0.  Returns 1 if the target was reached. */
static int wait_irqs(volatile u32 *counter, u32 target)
{
    wait_start();
    sti();
    while (*counter < target && !wait_expired())
        pause();
    cli();
    return *counter >= target;
}

/* `sti; hlt` until *counter reaches target.  Only called once an interrupt
 * of this kind is known to arrive, so it cannot hang on a dead device. */
static void hlt_until(volatile u32 *counter, u32 target)
{
    while (*counter < target)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}

/* ------------------------------------------------------------------------ */
/* 8259A PICs. */

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1
#define PIC_EOI   0x20

static void pic_init(void)
{
    outb(PIC1_CMD, 0x11);       /* ICW1: edge, cascade, ICW4 needed */
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, 0x20);      /* ICW2: vector base */
    outb(PIC2_DATA, 0x28);
    outb(PIC1_DATA, 0x04);      /* ICW3: slave on IR2 */
    outb(PIC2_DATA, 0x02);      /*       slave ID 2 */
    outb(PIC1_DATA, 0x01);      /* ICW4: 8086 mode, normal EOI */
    outb(PIC2_DATA, 0x01);
}

static void pic_mask(u8 master, u8 slave)
{
    outb(PIC1_DATA, master);
    outb(PIC2_DATA, slave);
}

static u8 pic_irr(u16 cmd)
{
    outb(cmd, 0x0A);            /* OCW3: read IRR */
    return inb(cmd);
}

static u8 pic_isr(u16 cmd)
{
    outb(cmd, 0x0B);            /* OCW3: read ISR */
    u8 v = inb(cmd);
    outb(cmd, 0x0A);
    return v;
}

/* ------------------------------------------------------------------------ */
/* 8254 PIT. */

#define PIT_CH0_COUNT 1193      /* ~1000 Hz */

static void pit_ch0(u8 mode, u16 count)
{
    outb(0x43, (u8)(0x30 | (mode << 1)));   /* channel 0, lobyte/hibyte, binary */
    outb(0x40, (u8)count);
    outb(0x40, (u8)(count >> 8));
}

/* Read-back command: latch the status byte of one channel and read it. */
static u8 pit_status(int ch)
{
    outb(0x43, (u8)(0xE0 | (2 << ch)));     /* read-back, status only */
    return inb((u16)(0x40 + ch));
}

static u16 pit_latch0(void)
{
    outb(0x43, 0x00);           /* counter latch, channel 0 */
    u8 lo = inb(0x40);
    u8 hi = inb(0x40);
    return (u16)(lo | (hi << 8));
}

/* Channel 2 in mode 0 with its gate opened through port 0x61 (speaker data
 * off), as Linux does to calibrate the TSC. */
static void pit_ch2_start(u16 count)
{
    outb(0x61, (u8)((inb(0x61) & ~0x02) | 0x01));   /* gate 2 high, speaker data off */
    outb(0x43, 0xB0);                               /* channel 2, lo/hi, mode 0 */
    outb(0x42, (u8)count);
    outb(0x42, (u8)(count >> 8));
}

/* Poll port 0x61 bit 5 (OUT2); 1 if it went high before the wait expired. */
static int pit_ch2_wait(void)
{
    wait_start();
    while (!(inb(0x61) & 0x20))
        if (wait_expired())
            return 0;
    return 1;
}

/* Let about `us` microseconds pass, timed by channel 2. */
static void delay_us(u32 us)
{
    pit_ch2_start((u16)(us * 1193 / 1000 + 1));
    (void)pit_ch2_wait();
}

/* ------------------------------------------------------------------------ */
/* Interrupt handlers: vectors 0x20 + IRQ. */

static volatile u32 pit_ticks, pit_isr_seen;

static void irq0_handler(struct frame *f)
{
    pit_ticks++;
    if (pic_isr(PIC1_CMD) & 0x01)
        pit_isr_seen++;
    outb(PIC1_CMD, PIC_EOI);
}

static volatile u32 kbd_irqs, kbd_byte;

static void irq1_handler(struct frame *f)
{
    kbd_irqs++;
    if (inb(0x64) & 0x01)
        kbd_byte = inb(0x60);
    outb(PIC1_CMD, PIC_EOI);
}

#define COM1 0x3F8
#define UART_RBR (COM1 + 0)
#define UART_THR (COM1 + 0)
#define UART_DLL (COM1 + 0)
#define UART_IER (COM1 + 1)
#define UART_DLM (COM1 + 1)
#define UART_IIR (COM1 + 2)
#define UART_FCR (COM1 + 2)
#define UART_LCR (COM1 + 3)
#define UART_MCR (COM1 + 4)
#define UART_LSR (COM1 + 5)
#define UART_MSR (COM1 + 6)
#define UART_SCR (COM1 + 7)

static volatile u32 uart_irqs, uart_iir;

static void irq4_handler(struct frame *f)
{
    uart_irqs++;
    uart_iir = inb(UART_IIR);   /* reading IIR clears a THRE interrupt */
    outb(PIC1_CMD, PIC_EOI);
}

static volatile u32 rtc_irqs, rtc_pf, rtc_pf_irqf, rtc_uf, rtc_cascade_seen;

static u8 cmos_read(u8 reg)
{
    outb(0x70, reg);
    return inb(0x71);
}

static void cmos_write(u8 reg, u8 v)
{
    outb(0x70, reg);
    outb(0x71, v);
}

static void irq8_handler(struct frame *f)
{
    rtc_irqs++;
    if ((pic_isr(PIC2_CMD) & 0x01) && (pic_isr(PIC1_CMD) & 0x04))
        rtc_cascade_seen++;
    u8 c = cmos_read(0x0C);     /* reading REG C acknowledges the RTC */
    if (c & 0x40) {
        rtc_pf++;
        if ((c & 0xC0) == 0xC0)
            rtc_pf_irqf++;
    }
    if ((c & 0x90) == 0x90)
        rtc_uf++;
    outb(PIC2_CMD, PIC_EOI);
    outb(PIC1_CMD, PIC_EOI);
}

/* ------------------------------------------------------------------------ */

static void test_pic(void)
{
    printf("-- 8259A PIC\n");
    /* Channel 0 one-shot with a long count, so its OUT stays low (no IRQ0
     * edge) while the IRR is looked at. */
    pit_ch0(0, 0xFFFF);
    pic_init();
    check_eq("master IMR after ICW1-4", inb(PIC1_DATA), 0x00);
    check_eq("slave IMR after ICW1-4", inb(PIC2_DATA), 0x00);
    pic_mask(0xA5, 0x5A);
    check_eq("master IMR read back", inb(PIC1_DATA), 0xA5);
    check_eq("slave IMR read back", inb(PIC2_DATA), 0x5A);
    pic_mask(0xFF, 0xFF);
    check_eq("master IMR all masked", inb(PIC1_DATA), 0xFF);
    check_eq("master IRR (OCW3 0x0A)", pic_irr(PIC1_CMD), 0x00);
    check_eq("master ISR (OCW3 0x0B)", pic_isr(PIC1_CMD), 0x00);
    check_eq("slave IRR", pic_irr(PIC2_CMD), 0x00);
    check_eq("slave ISR", pic_isr(PIC2_CMD), 0x00);
    check_eq("after OCW3 0x0A the data port still reads IMR", inb(PIC1_DATA), 0xFF);

    /* A short one-shot: OUT0 rises after ~84 us.  With IRQ0 masked the
     * request waits in IRR. */
    pit_ch0(0, 100);
    check_eq("PIT read-back status ch0 (mode 0, lo/hi) & 0x3f", pit_status(0) & 0x3F, 0x30);
    /* (Poll the IRR, not the PIT: an emulator may compute OUT from the clock
     * a little before its timer raises the IRQ line.) */
    wait_start();
    while (!(pic_irr(PIC1_CMD) & 0x01) && !wait_expired())
        ;
    check_eq("master IRR with masked IRQ0 pending", pic_irr(PIC1_CMD), 0x01);
    check(pit_status(0) & 0x80, "PIT ch0 OUT high after the one-shot count (read-back bit 7)");
    sti();
    delay_us(200);
    cli();
    check_dec("masked IRQ0 not delivered", pit_ticks, 0);
    check_eq("master ISR still empty", pic_isr(PIC1_CMD), 0x00);
    pic_mask(0xFE, 0xFF);
    int got = wait_irqs(&pit_ticks, 1);
    check(got, "unmasking IRQ0 delivers the pending request (vector 0x20)");
    check_dec("handler saw ISR bit 0 set", pit_isr_seen, 1);
    delay_us(200);
    check_dec("one-shot gives exactly one IRQ0", pit_ticks, 1);
    check_eq("master IRR after the interrupt", pic_irr(PIC1_CMD) & 0x01, 0x00);
    check_eq("master ISR after EOI", pic_isr(PIC1_CMD), 0x00);
    pic_mask(0xFF, 0xFF);
}

static void test_pit(void)
{
    printf("-- 8254 PIT\n");
    pit_ticks = pit_isr_seen = 0;
    pit_ch0(2, PIT_CH0_COUNT);
    check_eq("read-back status ch0 (mode 2, lo/hi) & 0x3f", pit_status(0) & 0x3F, 0x34);
    pic_mask(0xFE, 0xFF);
    int first = wait_irqs(&pit_ticks, 1);
    check(first, "ch0 mode 2 raises IRQ0");
    if (first)
        hlt_until(&pit_ticks, 50);
    check(pit_ticks >= 50, "sti;hlt loop counted 50 IRQ0 ticks at ~1 kHz");
    check(pit_ticks == pit_isr_seen, "every IRQ0 handler saw master ISR bit 0");
    check_eq("master ISR after the last EOI", pic_isr(PIC1_CMD), 0x00);
    pic_mask(0xFF, 0xFF);

    /* Latch until the count changes: both values in 1..count (mode 2 never
     * shows 0), the second smaller unless the counter reloaded in between. */
    int bad = 0, down = 0;
    for (int i = 0; i < 8; i++) {
        u16 a = pit_latch0(), b = a;
        wait_start();
        while (b == a && !wait_expired())
            b = pit_latch0();
        if (a < 1 || a > PIT_CH0_COUNT || b < 1 || b > PIT_CH0_COUNT)
            bad++;
        if (b < a)
            down++;
    }
    check(bad == 0, "ch0 latched counts lie in 1..1193");
    check(down >= 6, "ch0 counts down between two latches");

    /* Channel 2 one-shot (10 ms) through port 0x61, timed against two
     * more one-shots: channel 0, 50 us shorter and loaded just before, and
     * channel 1, 50 us longer and loaded just after.  Channel 2 must not be
     * seen high before channel 0 expired, nor low once channel 1 has (both
     * read through the read-back status, which stays high once reached). */
    pit_ch0(0, 11932 - 60);
    pit_ch2_start(11932);
    outb(0x43, 0x70);           /* channel 1, lo/hi, mode 0 */
    outb(0x41, (u8)(11932 + 60));
    outb(0x41, (u8)((11932 + 60) >> 8));
    check_eq("port 0x61 bit 0 (gate 2) reads back", inb(0x61) & 0x03, 0x01);
    check_eq("port 0x61 bit 5 (OUT2) low after loading the count", inb(0x61) & 0x20, 0);
    check_eq("read-back status ch2 (mode 0, lo/hi) & 0x3f", pit_status(2) & 0x3F, 0x30);
    check_eq("read-back status ch1 (mode 0, lo/hi) & 0x3f", pit_status(1) & 0x3F, 0x30);
    int high = 0, late = 0;
    wait_start();
    while (!wait_expired()) {
        u8 st1 = pit_status(1);
        if (inb(0x61) & 0x20) {
            high = 1;
            break;
        }
        if (st1 & 0x80)
            late = 1;
    }
    u8 st0 = pit_status(0);
    check(high, "port 0x61 bit 5 (OUT2) goes high at terminal count");
    check(st0 & 0x80, "ch2 not high before ch0's shorter one-shot expired");
    check(!late, "ch2 still low only while ch1's longer one-shot ran");
    check(pit_status(2) & 0x80, "read-back status ch2 OUT high");
}

static int bcd_ok(u8 v, u8 lo, u8 hi)
{
    return (v & 0x0F) <= 9 && (v >> 4) <= 9 && v >= lo && v <= hi;
}

static u8 bcd_next(u8 v, u8 modulo)   /* v + 1 in BCD, wrapping at modulo (BCD) */
{
    u8 bin = (u8)((v >> 4) * 10 + (v & 0x0F) + 1);
    u8 mod = (u8)((modulo >> 4) * 10 + (modulo & 0x0F));
    if (bin == mod)
        bin = 0;
    return (u8)(((bin / 10) << 4) | (bin % 10));
}

static void test_rtc(void)
{
    printf("-- MC146818 RTC / CMOS\n");
    check_eq("REG D (valid RAM and time)", cmos_read(0x0D), 0x80);
    cmos_write(0x0A, 0x26);     /* 32.768 kHz time base, rate 6 = 1024 Hz */
    check_eq("REG A read back & 0x7f", cmos_read(0x0A) & 0x7F, 0x26);
    cmos_write(0x0B, 0x02);     /* BCD, 24-hour, no interrupts */
    check_eq("REG B read back", cmos_read(0x0B), 0x02);

    /* The clock in BCD: read until two reads agree, outside an update. */
    u8 t[6], u[6];
    static const u8 regs[6] = { 0x00, 0x02, 0x04, 0x07, 0x08, 0x09 };
    int stable = 0;
    for (int tries = 0; tries < 10 && !stable; tries++) {
        wait_start();
        while ((cmos_read(0x0A) & 0x80) && !wait_expired())
            ;
        for (int i = 0; i < 6; i++)
            t[i] = cmos_read(regs[i]);
        for (int i = 0; i < 6; i++)
            u[i] = cmos_read(regs[i]);
        stable = memcmp(t, u, sizeof t) == 0;
    }
    check(stable, "two consecutive clock reads agree");
    check(bcd_ok(t[0], 0x00, 0x59), "seconds is BCD 00..59");
    check(bcd_ok(t[1], 0x00, 0x59), "minutes is BCD 00..59");
    check(bcd_ok(t[2], 0x00, 0x23), "hours is BCD 00..23 (24-hour mode)");
    check(bcd_ok(t[3], 0x01, 0x31), "day of month is BCD 01..31");
    check(bcd_ok(t[4], 0x01, 0x12), "month is BCD 01..12");
    check(bcd_ok(t[5], 0x00, 0x99), "year is BCD 00..99");

    /* Periodic interrupt, 1024 Hz, on IRQ8 through the slave PIC. */
    (void)cmos_read(0x0C);
    pic_mask(0xFB, 0xFE);       /* master: IRQ2 (cascade); slave: IRQ8 */
    cmos_write(0x0B, 0x42);     /* PIE */
    check_eq("REG B with PIE", cmos_read(0x0B), 0x42);
    int first = wait_irqs(&rtc_irqs, 1);
    check(first, "periodic interrupt arrives on IRQ8 (vector 0x28)");
    if (first)
        hlt_until(&rtc_irqs, 8);
    cmos_write(0x0B, 0x02);
    u32 n = rtc_irqs;
    check(n >= 8, "sti;hlt loop counted 8 periodic interrupts");
    check(rtc_pf_irqf == n, "REG C had PF|IRQF (0xc0) in every handler");
    check(rtc_cascade_seen == n, "handlers saw slave ISR bit 0 and master ISR bit 2");
    (void)cmos_read(0x0C);
    sti();
    delay_us(3000);
    cli();
    check(rtc_irqs == n, "no IRQ8 after clearing PIE");
    check_eq("slave ISR after EOI", pic_isr(PIC2_CMD), 0x00);
    check_eq("master ISR after EOI", pic_isr(PIC1_CMD), 0x00);

    /* Update-ended interrupt: once a second, and the seconds move by one.
     * The periodic interrupt stays on so that every `hlt` ends and the wait
     * is bounded (3 s of 1024 Hz interrupts) even without update interrupts. */
    if (first) {
        rtc_uf = 0;
        u32 pf0 = rtc_pf;
        (void)cmos_read(0x0C);
        cmos_write(0x0B, 0x52); /* PIE | UIE */
        while (rtc_uf < 1 && rtc_pf - pf0 < 3 * 1024)
            __asm__ volatile("sti; hlt; cli" ::: "memory");
        u8 s1 = cmos_read(0x00);
        check(rtc_uf >= 1, "update-ended interrupt arrives (REG C UF|IRQF)");
        pf0 = rtc_pf;
        while (rtc_uf < 2 && rtc_pf - pf0 < 3 * 1024)
            __asm__ volatile("sti; hlt; cli" ::: "memory");
        u8 s2 = cmos_read(0x00);
        check(rtc_uf >= 2 && s2 == bcd_next(s1, 0x60),
              "seconds advanced by one between two update interrupts");
    }
    cmos_write(0x0B, 0x02);
    (void)cmos_read(0x0C);
    pic_mask(0xFF, 0xFF);
}

static int uart_wait_lsr(u8 bits)
{
    wait_start();
    while ((inb(UART_LSR) & bits) != bits)
        if (wait_expired())
            return 0;
    return 1;
}

static void test_uart(void)
{
    printf("-- 16550A UART (COM1)\n");
    outb(UART_IER, 0x00);
    outb(UART_SCR, 0x5A);
    check_eq("scratch register := 0x5a", inb(UART_SCR), 0x5A);
    outb(UART_SCR, 0xA5);
    check_eq("scratch register := 0xa5", inb(UART_SCR), 0xA5);

    outb(UART_LCR, 0x80);       /* DLAB */
    outb(UART_DLL, 0x34);
    outb(UART_DLM, 0x12);
    check_eq("divisor latch (DLM:DLL)", inb(UART_DLL) | (inb(UART_DLM) << 8), 0x1234);
    outb(UART_DLL, 0x01);       /* 115200 baud */
    outb(UART_DLM, 0x00);
    outb(UART_LCR, 0x03);       /* 8N1, DLAB off */
    check_eq("LCR read back (8N1)", inb(UART_LCR), 0x03);
    check_eq("with DLAB=0 port +1 is IER", inb(UART_IER), 0x00);
    outb(UART_LCR, 0x83);
    check_eq("divisor latch := 1", inb(UART_DLL) | (inb(UART_DLM) << 8), 0x0001);
    outb(UART_LCR, 0x03);

    outb(UART_FCR, 0x00);
    check_eq("IIR, FIFOs off, no interrupt", inb(UART_IIR), 0x01);
    outb(UART_FCR, 0x07);       /* enable, clear RX and TX */
    check_eq("IIR, FIFOs on, no interrupt", inb(UART_IIR), 0xC1);
    check_eq("LSR idle (THRE|TEMT)", inb(UART_LSR), 0x60);

    /* Loopback: the modem outputs appear on the modem inputs. */
    static const struct { u8 mcr, msr; const char *what; } lines[] = {
        { 0x00, 0x00, "MSR & 0xf0 in loopback, MCR outputs off" },
        { 0x01, 0x20, "MSR & 0xf0 in loopback, DTR -> DSR" },
        { 0x02, 0x10, "MSR & 0xf0 in loopback, RTS -> CTS" },
        { 0x04, 0x40, "MSR & 0xf0 in loopback, OUT1 -> RI" },
        { 0x08, 0x80, "MSR & 0xf0 in loopback, OUT2 -> DCD" },
        { 0x0F, 0xF0, "MSR & 0xf0 in loopback, all four" },
    };
    for (u32 i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        outb(UART_MCR, (u8)(0x10 | lines[i].mcr));
        check_eq(lines[i].what, inb(UART_MSR) & 0xF0, lines[i].msr);
    }
    check_eq("MCR read back", inb(UART_MCR), 0x1F);

    outb(UART_MCR, 0x13);       /* loopback, DTR, RTS */
    outb(UART_FCR, 0x00);       /* no FIFO: one byte */
    outb(UART_THR, 0xA5);
    check(uart_wait_lsr(0x01), "loopback byte received (LSR DR), FIFOs off");
    check_eq("loopback RBR", inb(UART_RBR), 0xA5);
    check_eq("LSR after reading RBR & 0x61", inb(UART_LSR) & 0x61, 0x60);

    outb(UART_FCR, 0x07);       /* FIFOs on: three bytes in a row */
    outb(UART_THR, 0x11);
    outb(UART_THR, 0x22);
    outb(UART_THR, 0x33);
    u32 rx = 0;
    for (int i = 0; i < 3; i++) {
        if (!uart_wait_lsr(0x01))
            break;
        rx = (rx << 8) | inb(UART_RBR);
    }
    check_eq("three loopback bytes through the FIFOs", rx, 0x112233);
    check(uart_wait_lsr(0x60), "transmitter empty again");
    check_eq("LSR after the FIFO run", inb(UART_LSR), 0x60);

    /* THRE interrupt on IRQ4: OUT2 gates the IRQ line on a PC, so leave
     * loopback (nothing is transmitted here). */
    outb(UART_MCR, 0x0B);       /* DTR, RTS, OUT2 */
    (void)inb(UART_LSR);
    (void)inb(UART_MSR);
    check_eq("IIR before enabling interrupts", inb(UART_IIR), 0xC1);
    pic_mask(0xEF, 0xFF);
    outb(UART_IER, 0x02);       /* THRE interrupt; THR is empty already */
    int got = wait_irqs(&uart_irqs, 1);
    check(got, "THRE interrupt arrives on IRQ4 (vector 0x24)");
    sti();
    delay_us(500);
    cli();
    check_dec("exactly one THRE interrupt", uart_irqs, 1);
    check_eq("IIR in the handler (FIFOs on, THRE)", uart_iir, 0xC2);
    check_eq("IIR after the handler read it", inb(UART_IIR), 0xC1);
    outb(UART_IER, 0x00);
    outb(UART_MCR, 0x00);
    pic_mask(0xFF, 0xFF);
}

/* ------------------------------------------------------------------------ */
/* i8042. */

static int kbc_timeouts;

static void kbc_wait_input_empty(void)
{
    wait_start();
    while (inb(0x64) & 0x02)
        if (wait_expired()) {
            kbc_timeouts++;
            return;
        }
}

static void kbc_cmd(u8 c)
{
    kbc_wait_input_empty();
    outb(0x64, c);
}

static void kbc_data(u8 d)
{
    kbc_wait_input_empty();
    outb(0x60, d);
}

/* Next byte from the output buffer, or 0xFFFFFFFF after a timeout. */
static u32 kbc_read(void)
{
    wait_start();
    while (!(inb(0x64) & 0x01))
        if (wait_expired())
            return 0xFFFFFFFF;
    return inb(0x60);
}

static void kbc_flush(void)
{
    for (int i = 0; i < 32 && (inb(0x64) & 0x01); i++)
        (void)inb(0x60);
}

static void test_i8042(void)
{
    printf("-- i8042 keyboard controller\n");
    kbc_cmd(0xAD);              /* disable keyboard */
    kbc_cmd(0xA7);              /* disable mouse */
    kbc_flush();
    kbc_cmd(0xAA);
    check_eq("controller self test (0xAA)", kbc_read(), 0x55);
    kbc_cmd(0xAB);
    check_eq("keyboard interface test (0xAB)", kbc_read(), 0x00);

    kbc_cmd(0x60);
    kbc_data(0x64);             /* translate, mouse off, system flag, no IRQs */
    kbc_cmd(0x20);
    check_eq("command byte := 0x64", kbc_read(), 0x64);
    kbc_cmd(0x60);
    kbc_data(0x24);             /* the same without translation, keyboard on */
    kbc_cmd(0x20);
    check_eq("command byte := 0x24", kbc_read(), 0x24);
    check_eq("status: system flag (bit 2), buffers empty", inb(0x64) & 0x07, 0x04);

    kbc_data(0xEE);
    check_eq("keyboard echo (0xEE)", kbc_read(), 0xEE);
    kbc_data(0xF2);
    u32 a = kbc_read(), b = kbc_read(), c = kbc_read();
    check_eq("keyboard identify (0xF2), translation off", a << 16 | b << 8 | c, 0xFAAB83);
    kbc_data(0xFF);
    a = kbc_read();
    b = kbc_read();
    check_eq("keyboard reset (0xFF): ACK, BAT passed", a << 8 | b, 0xFAAA);
    check_eq("output buffer empty afterwards", inb(0x64) & 0x01, 0);

    /* A keyboard byte through IRQ1. */
    kbc_cmd(0x60);
    kbc_data(0x25);             /* keyboard interrupt on */
    pic_mask(0xFD, 0xFF);
    kbc_data(0xEE);
    int got = wait_irqs(&kbd_irqs, 1);
    check(got, "keyboard byte raises IRQ1 (vector 0x21)");
    check_eq("byte read in the IRQ1 handler", kbd_byte, 0xEE);
    pic_mask(0xFF, 0xFF);
    kbc_cmd(0x60);
    kbc_data(0x24);
    check_dec("i8042 timeouts", (u32)kbc_timeouts, 0);
}

/* ------------------------------------------------------------------------ */
/* PCI configuration mechanism #1. */

static u32 pci_addr(u32 bus, u32 dev, u32 fn, u32 reg)
{
    return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xFC);
}

static u32 pci_read(u32 bus, u32 dev, u32 fn, u32 reg)
{
    outl(0xCF8, pci_addr(bus, dev, fn, reg));
    return inl(0xCFC);
}

static void test_pci(void)
{
    printf("-- PCI configuration mechanism #1\n");
    check_eq("00.0 device:vendor (i440FX)", pci_read(0, 0, 0, 0x00), 0x12378086);
    check_eq("00.0 class code", pci_read(0, 0, 0, 0x08) >> 16, 0x0600);
    check_eq("00.0 header type", pci_read(0, 0, 0, 0x0C) >> 16 & 0xFF, 0x00);
    check_eq("01.0 device:vendor (PIIX3)", pci_read(0, 1, 0, 0x00), 0x70008086);
    check_eq("01.0 class code", pci_read(0, 1, 0, 0x08) >> 16, 0x0601);
    check_eq("01.0 header type (bit 7: multi-function)", pci_read(0, 1, 0, 0x0C) >> 16 & 0xFF, 0x80);
    check_eq("00:1f.0 (no device)", pci_read(0, 31, 0, 0x00), 0xFFFFFFFF);
    check_eq("01:00.0 (no bus 1)", pci_read(1, 0, 0, 0x00), 0xFFFFFFFF);

    outl(0xCF8, pci_addr(0, 0, 0, 0x00));
    check_eq("00.0 device ID, 16-bit read of 0xCFE", inw(0xCFE), 0x1237);
    check_eq("00.0 vendor ID low byte, 8-bit read of 0xCFC", inb(0xCFC), 0x86);
    outl(0xCF8, pci_addr(0, 1, 0, 0x0C));
    check_eq("01.0 header type, 8-bit read of 0xCFE", inb(0xCFE), 0x80);

    outl(0xCF8, pci_addr(0, 1, 0, 0x60));
    u8 pirqa = inb(0xCFC);
    outb(0xCFC, 0x8B);
    check_eq("01.0 PIRQA route (0x60) := 0x8b", pci_read(0, 1, 0, 0x60) & 0xFF, 0x8B);
    outl(0xCF8, pci_addr(0, 1, 0, 0x60));
    outb(0xCFC, pirqa);

    outl(0xCF8, pci_addr(0, 2, 3, 0x3C));
    check_eq("address register 0xCF8 reads back", inl(0xCF8), 0x8000133C);
    outl(0xCF8, 0x00000000);
    check_eq("data port with the enable bit clear", inl(0xCFC), 0xFFFFFFFF);
}

/* ------------------------------------------------------------------------ */
/* A20 (see pc_devices_asm.S). */

extern u8 a20_probe_code[], a20_probe_end[];
extern u8 __image_end[];
volatile u32 a20_result[5];

static void test_a20(void)
{
    printf("-- A20 gate (port 0x92)\n");
    if ((u32)__image_end > A20_HIGH)
        fail("the image overlaps the A20 test address %#x", A20_HIGH);
    volatile u32 *low = phys(A20_LOW), *high = phys(A20_HIGH);

    outb(0x92, 0x02);
    check_eq("port 0x92 := 0x02 reads back", inb(0x92), 0x02);
    *low = 0x11111111;
    *high = 0x22222222;
    check_eq("A20 open: dword at X", *low, 0x11111111);
    check_eq("A20 open: dword at 1 MiB + X", *high, 0x22222222);

    memcpy(phys(A20_CODE), a20_probe_code, (u32)(a20_probe_end - a20_probe_code));
    void (*probe)(void) = (void (*)(void))phys(A20_CODE);
    probe();

    kbc_cmd(0xD1);
    kbc_data(0xDF);             /* 8042 output port: A20 on again */
    kbc_cmd(0xD0);
    u32 outport = kbc_read();

    check_dec("8042 waits in the probe timed out", a20_result[4], 0);
    check_eq("port 0x92 := 0x00 reads back", a20_result[0], 0x00);
    check_eq("8042 output port bit 1 after writing 0xDD", a20_result[1] & 0x02, 0x00);
    check_eq("A20 closed: dword at 1 MiB + X is the one at X", a20_result[2], 0x11111111);
    check_eq("A20 closed: write to 1 MiB + X landed at X", *low, A20_WRITTEN);
    check_eq("port 0x92 := 0x02: dword at 1 MiB + X again", a20_result[3], 0x22222222);
    check_eq("8042 output port bit 1 after writing 0xDF", outport & 0x02, 0x02);
    check_eq("both gates open: dword at 1 MiB + X", *high, 0x22222222);
}

int kmain(u32 magic, u32 mbi)
{
    printf("pc_devices: PIC, PIT, RTC, UART, i8042, PCI, A20\n");
    trap_handlers[0x20] = irq0_handler;
    trap_handlers[0x21] = irq1_handler;
    trap_handlers[0x24] = irq4_handler;
    trap_handlers[0x28] = irq8_handler;
    test_pic();
    test_pit();
    test_rtc();
    test_uart();
    test_i8042();
    test_pci();
    test_a20();
    return 0;
}
