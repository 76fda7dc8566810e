/* Helpers shared by the namespace operations. */
#ifndef STRATA_UNIONFS_DIR_H
#define STRATA_UNIONFS_DIR_H

#include <stdbool.h>

#include "node.h"

/* Does any branch below the top (and below no opaque marker) still show
 * name in parent?  Then removing the upper object needs a whiteout. */
int lower_has_name(struct node *parent, const char *name, bool *has);

/* Is the merged directory n empty of visible entries? (readdir.c) */
int merged_dir_empty(struct node *n, bool *empty);

#endif
