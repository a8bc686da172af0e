/* faulty: a static guest program with known page faults, for `faultline
 * run -- build/programs/faulty` (tests/integration/test_run_faulty.sh).
 *  touch_pages: maps FAULTY_PAGES fresh anonymous pages at FAULTY_BASE and
 *    writes one byte at offset FAULTY_OFFSET of each: one user-mode write
 *    fault per page, at FAULTY_BASE + i * 4096 + FAULTY_OFFSET;
 *  read_mapping: maps a file (/init, or argv[1]) and reads its first byte: a
 *    user-mode read fault on a file mapping;
 *  fork_and_write: the child writes the buffer's first page (copy-on-write,
 *    in the child: another pid).
 * Prints its own count of the buffer pages it touched; exits 0 when all of
 * them hold what it wrote. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAULTY_BASE 0x7e0000000000UL
#define FAULTY_PAGES 8
#define FAULTY_OFFSET 0x10

__attribute__((noinline)) static int touch_pages(volatile char *p)
{
    for (int i = 0; i < FAULTY_PAGES; i++)
        p[i * 4096 + FAULTY_OFFSET] = (char)(i + 1);
    int touched = 0;
    for (int i = 0; i < FAULTY_PAGES; i++)
        touched += p[i * 4096 + FAULTY_OFFSET] == (char)(i + 1);
    return touched;
}

__attribute__((noinline)) static int read_mapping(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    volatile char *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return -1;
    return m[0];
}

__attribute__((noinline)) static int fork_and_write(volatile char *p)
{
    pid_t pid = fork();
    if (pid == 0) {
        p[FAULTY_OFFSET] = 0x55; /* copy-on-write: the child's own copy */
        _exit(p[FAULTY_OFFSET] == 0x55 ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(int argc, char **argv)
{
    volatile char *p = mmap((void *)FAULTY_BASE, FAULTY_PAGES * 4096, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || p != (volatile char *)FAULTY_BASE) {
        perror("faulty: mmap");
        return 4;
    }
    int touched = touch_pages(p);
    int first = read_mapping(argc > 1 ? argv[1] : "/init");
    int child = fork_and_write(p);
    printf("faulty: pages touched: %d of %d at 0x%lx+0x%x, file byte 0x%02x, child status %d\n", touched,
           FAULTY_PAGES, FAULTY_BASE, FAULTY_OFFSET, first & 0xff, child);
    return touched == FAULTY_PAGES && first >= 0 && child == 0 && p[FAULTY_OFFSET] == 1 ? 0 : 3;
}
