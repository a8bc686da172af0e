/* kernel layer, source text: files read once and cached by line; for a
 * kernel built elsewhere, the tail of each DWARF path is looked up under a
 * source directory (GDB's substitute-path), and Debian's own linux-source
 * tarball can be that directory: unpacked once into the user's cache. */
#include "kernel_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- reading and caching ---- */

static char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static char *read_source(kern *k, const char *file, size_t *len)
{
    char *t = read_whole(file, len);
    if (t || !k->src_root)
        return t;
    /* Built elsewhere: try each tail of the recorded path under src_root,
     * longest first ("/build/linux/mm/memory.c" -> "build/linux/mm/memory.c"
     * -> "linux/mm/memory.c" -> "mm/memory.c" -> "memory.c"). */
    char p[4096];
    for (const char *s = file; s && *s; s = strchr(s + 1, '/')) {
        const char *tail = *s == '/' ? s + 1 : s;
        if (!*tail)
            break;
        snprintf(p, sizeof p, "%s/%s", k->src_root, tail);
        if ((t = read_whole(p, len)))
            return t;
    }
    return NULL;
}

static void split_lines(ksrc_file *f, size_t len)
{
    size_t nl = 1;
    for (size_t i = 0; i < len; i++)
        nl += f->text[i] == '\n';
    f->lines = malloc(nl * sizeof *f->lines);
    if (!f->lines)
        return;
    char *p = f->text;
    for (;;) {
        f->lines[f->nlines++] = p;
        char *e = strchr(p, '\n');
        if (!e)
            break;
        *e = '\0';
        if (e > p && e[-1] == '\r')
            e[-1] = '\0';
        p = e + 1;
        if (!*p)
            break;
    }
}

const char *kern_source_text(kern *k, const char *file, int line)
{
    if (!k || !file || line < 1)
        return NULL;
    ksrc_file *f;
    for (f = k->srcs; f; f = f->next)
        if (strcmp(f->path, file) == 0)
            break;
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            return NULL;
        f->path = strdup(file);
        size_t len = 0;
        f->text = f->path ? read_source(k, file, &len) : NULL;
        if (f->text)
            split_lines(f, len);
        f->next = k->srcs;
        k->srcs = f;   /* cached even when unreadable: do not retry every call */
    }
    if (!f->lines || (size_t)line > f->nlines)
        return NULL;
    return f->lines[line - 1];
}

void ks_free(kern *k)
{
    for (ksrc_file *f = k->srcs, *n; f; f = n) {
        n = f->next;
        free(f->path);
        free(f->text);
        free(f->lines);
        free(f);
    }
    k->srcs = NULL;
}

int kern_set_source_dir(kern *k, const char *dir, fl_error *err)
{
    struct stat st;
    if (dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        return fl_fail(err, FL_ENOTFOUND, "source directory %s %s; pass the top of the kernel source tree",
                       dir, errno == ENOENT ? "does not exist" : "is not a directory");
    char *copy = dir ? strdup(dir) : NULL;
    if (dir && !copy)
        return fl_fail(err, FL_ENOMEM, "out of memory setting the source directory %s", dir);
    free(k->src_root);
    k->src_root = copy;
    ks_free(k);   /* files found unreadable before may be readable now */
    return 0;
}

const char *kern_source_dir(const kern *k)
{
    return k->src_root;
}

/* ---- the kernel's release and Debian's linux-source ---- */

const char *kern_release(kern *k, char *buf, size_t cap)
{
    buf[0] = '\0';
    const char *b = kern_banner(k);
    if (strncmp(b, "Linux version ", 14) == 0)
        snprintf(buf, cap, "%.*s", (int)strcspn(b + 14, " "), b + 14);
    return buf;
}

/* Version of an installed package from dpkg's status file, or "". */
static void dpkg_version(const char *status, const char *pkg, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(status, "r");
    if (!f)
        return;
    char line[1024];
    bool in = false, installed = false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "Package: ", 9) == 0) {
            if (in && installed && out[0])
                break;
            in = strcmp(line + 9, pkg) == 0;
            installed = false;
            out[0] = '\0';
        } else if (in && strncmp(line, "Status: ", 8) == 0) {
            installed = strstr(line, " installed") != NULL;
        } else if (in && strncmp(line, "Version: ", 9) == 0) {
            snprintf(out, cap, "%s", line + 9);
        }
    }
    if (!(in && installed))
        out[0] = '\0';
    fclose(f);
}

/* The linux-source package that matches this kernel: series "6.12" from the
 * release "6.12.118+deb12-cloud-amd64"; the installed version must equal the
 * banner's "Debian 6.12.118-1~deb12u1" when the banner names one, else its
 * upstream part must equal the release's ("6.12.118"). */
static int match_package(kern *k, const char *status, char *series, size_t scap, char *ver, size_t vcap,
                         fl_error *err)
{
    char rel[128], pkg[160];
    kern_release(k, rel, sizeof rel);
    size_t up = strspn(rel, "0123456789.");
    const char *dot = memchr(rel, '.', up);
    const char *dot2 = dot ? memchr(dot + 1, '.', up - (size_t)(dot + 1 - rel)) : NULL;
    if (!up || !dot)
        return fl_fail(err, FL_ENOTFOUND, "the banner of %s names no kernel release, so no Debian "
                       "linux-source can be matched to it; pass --source-dir", k->path);
    snprintf(series, scap, "%.*s", (int)((dot2 ? dot2 : rel + up) - rel), rel);
    snprintf(pkg, sizeof pkg, "linux-source-%s", series);
    dpkg_version(status, pkg, ver, vcap);
    if (!ver[0])
        return fl_fail(err, FL_ENOTFOUND, "%s is not installed, so the source of kernel %s is not here; "
                       "apt-get install %s, or pass --source-dir", pkg, rel, pkg);
    const char *deb = NULL;
    for (const char *p = strstr(kern_banner(k), " Debian "); p; p = strstr(p + 1, " Debian "))
        deb = p + 8;
    size_t vlen = strlen(ver);
    const char *dash = strrchr(ver, '-');
    bool same = deb ? strncmp(deb, ver, vlen) == 0 && (deb[vlen] == ' ' || deb[vlen] == '\0')
                    : (size_t)((dash ? dash : ver + vlen) - ver) == up && strncmp(ver, rel, up) == 0;
    if (!same)
        return fl_fail(err, FL_ENOTFOUND, "%s %s is installed but kernel %s was built from %s%.*s; install "
                       "the matching %s, or pass --source-dir", pkg, ver, rel, deb ? "Debian " : "",
                       deb ? (int)strcspn(deb, " ") : (int)up, deb ? deb : rel, pkg);
    return 0;
}

/* ${XDG_CACHE_HOME:-$HOME/.cache}/faultline, created 0700 and ours; never a
 * shared fallback such as /tmp. */
static int cache_dir(const char *given, char *out, size_t cap, fl_error *err)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (given)
        snprintf(out, cap, "%s", given);
    else if (xdg && *xdg)
        snprintf(out, cap, "%s/faultline", xdg);
    else if (home && *home)
        snprintf(out, cap, "%s/.cache/faultline", home);
    else
        return fl_fail(err, FL_ENOTFOUND, "neither $XDG_CACHE_HOME nor $HOME is set, so there is no private "
                       "cache to unpack the kernel source into; pass --source-dir");
    for (char *p = out + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(out, 0700);
        *p = '/';
    }
    mkdir(out, 0700);
    struct stat st;
    if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
        return fl_fail(err, FL_EIO, "the cache directory %s is not a directory of this user closed to others; "
                       "fix its owner and mode (0700)", out);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int run_tar(const char *tarball, const char *dir, fl_error *err)
{
    char *argv[] = { "tar", "--no-same-owner", "-xf", (char *)tarball, "-C", (char *)dir, NULL };
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, "tar", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return fl_fail(err, FL_EIO, "cannot run tar to unpack %s: %s", tarball, strerror(rc));
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return fl_fail(err, FL_EIO, "waiting for tar unpacking %s: %s", tarball, strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return fl_fail(err, FL_EIO, "tar could not unpack %s into %s (exit %d); is xz-utils installed and "
                       "is there space?", tarball, dir, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

/* Unpacks tarball into dir once: under an flock, the stamp written last, a
 * partial tree from an interrupted run removed first. */
static int unpack_once(const char *tarball, const char *dir, fl_error *err)
{
    char lock[4200], stamp[4200];
    snprintf(lock, sizeof lock, "%s.lock", dir);
    snprintf(stamp, sizeof stamp, "%s/.faultline-unpacked", dir);
    int lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0)
        return fl_fail(err, FL_EIO, "cannot create the lock %s: %s", lock, strerror(errno));
    int rc = 0;
    while (flock(lfd, LOCK_EX) != 0 && errno == EINTR)
        ;
    if (access(stamp, F_OK) != 0) {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (mkdir(dir, 0700) != 0)
            rc = fl_fail(err, FL_EIO, "cannot create %s: %s", dir, strerror(errno));
        if (rc == 0 && (rc = run_tar(tarball, dir, err)) != 0)
            nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        int sfd = rc == 0 ? open(stamp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
        if (rc == 0 && sfd < 0)
            rc = fl_fail(err, FL_EIO, "cannot write %s: %s", stamp, strerror(errno));
        if (sfd >= 0)
            close(sfd);
    }
    close(lfd);   /* releases the flock */
    return rc;
}

int kern_use_debian_source(kern *k, const kern_source_paths *paths, fl_error *err)
{
    kern_source_paths none = { 0 };
    const kern_source_paths *p = paths ? paths : &none;
    char series[32], ver[128], tarball[4096], cache[4096], dir[4300], top[4400];
    if (match_package(k, p->dpkg_status ? p->dpkg_status : "/var/lib/dpkg/status", series, sizeof series, ver,
                      sizeof ver, err) != 0)
        return -1;
    snprintf(tarball, sizeof tarball, "%s/linux-source-%s.tar.xz", p->usr_src ? p->usr_src : "/usr/src", series);
    if (access(tarball, R_OK) != 0)
        return fl_fail(err, FL_ENOTFOUND, "linux-source-%s %s is installed but %s is missing; reinstall "
                       "linux-source-%s, or pass --source-dir", series, ver, tarball, series);
    if (cache_dir(p->cache_dir, cache, sizeof cache, err) != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s/source-%s", cache, ver);
    if (unpack_once(tarball, dir, err) != 0)
        return -1;
    /* The tarball's one top directory is the tree. */
    snprintf(top, sizeof top, "%s/linux-source-%s", dir, series);
    struct stat st;
    return kern_set_source_dir(k, stat(top, &st) == 0 && S_ISDIR(st.st_mode) ? top : dir, err);
}
