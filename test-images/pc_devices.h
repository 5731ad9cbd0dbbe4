/* Addresses shared by pc_devices.c and pc_devices_asm.S (only #defines). */
#ifndef PC_DEVICES_H
#define PC_DEVICES_H
#define A20_CODE    0x00008000  /* the probe runs here, below 1 MiB */
#define A20_LOW     0x00070000  /* X */
#define A20_HIGH    0x00170000  /* 1 MiB + X: the same address with bit 20 set */
#define A20_WRITTEN 0x5A5AA5A5  /* written through A20_HIGH with A20 closed */
#endif
