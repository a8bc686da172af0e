/* cmd_signal: the stop signals. The command line is their only owner: the
 * first INT/TERM/HUP/QUIT makes every wait give up, so the report of what
 * was captured is still written; a second one kills QEMU and exits at once. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultline/cmd.h"
#include "faultline/vm.h"

volatile sig_atomic_t cmd_stop_signal;

static void on_stop_signal(int sig)
{
    if (cmd_stop_signal) {
        vm_kill_all(); /* async-signal-safe: kill + waitpid */
        _exit(128 + sig);
    }
    cmd_stop_signal = sig;
}

void cmd_install_signals(void)
{
    static const int stops[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: a blocked poll returns at once */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++)
        sigaction(stops[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atexit(vm_kill_all);
}

int cmd_stopped_by_signal(fl_error *err)
{
    if (!cmd_stop_signal)
        return 0;
    const char *abbrev = sigabbrev_np(cmd_stop_signal);
    return fl_fail(err, FL_EINTR, "interrupted by SIG%s", abbrev ? abbrev : "?");
}

int cmd_check_stop(void *ctx)
{
    (void)ctx;
    return cmd_stop_signal != 0;
}
