const char marker[] = "upx-sensor-marker:upx-sensor-marker:upx-sensor-marker:upx-sensor-marker:upx-sensor-marker:upx-sensor-marker:";
#define L "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. "
#define L2 L L L L L L L L
const char text[] = L2 L2 L2 L2 L2 L2 L2 L2 L2 L2;
volatile char table[4000] = {1,2,3};
const char *volatile keep[2] = {marker, text};
void _start(void) {
  long n = keep[0][3] + keep[1][5] + table[5];
  __asm__ volatile ("mov $60, %%eax; syscall" :: "D"(n) : "rax");
  for(;;);
}
