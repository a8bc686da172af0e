/* placeholder replaced below */
#include "faultline/cmd.h"
int cmd_matrix(const cli_options *o)
{
    (void)o;
    return CMD_EXIT_ENV;
}
