/* Branch setup: validating the configuration against the filesystem,
 * opening branch roots, locking the writable branch and preparing the
 * work directory and xino table. */
#ifndef STRATA_UNIONFS_BRANCH_H
#define STRATA_UNIONFS_BRANCH_H

#include <stddef.h>

#include "opts.h"

/* Fills the global ufs from cfg.  On failure writes a one-line message
 * into err and returns -1; nothing is left locked or half-created. */
int branches_setup(struct union_config *cfg, char *err, size_t errlen);
void branches_teardown(void);

/* A fresh unique name for a temporary entry in the work dir. */
void work_tmpname(char *buf, size_t len);

#endif
