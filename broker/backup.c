/*
 * relaisd --backup DIR: a hot copy of the store.
 *
 * mdb_env_copy2() copies from one read transaction, so the copy is the
 * state of one commit even while a broker keeps writing; MDB_CP_COMPACT
 * leaves free pages out.  The copy opens like any store: point a config's
 * data_dir at it.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "relaisd.h"

int
backup_store(const struct config *cfg, const char *dir, FILE *out)
{
	struct store st;
	char err[512];
	int rc;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		fprintf(out, "backup: cannot create %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (store_open(&st, cfg->data_dir, cfg->map_size_mb, true, err,
	    sizeof(err)) == -1) {
		fprintf(out, "backup: %s\n", err);
		return -1;
	}
	rc = mdb_env_copy2(st.env, dir, MDB_CP_COMPACT);
	store_close(&st);
	if (rc != 0) {
		fprintf(out, "backup: cannot copy the store to %s: %s%s\n", dir,
		    mdb_strerror(rc), rc == EEXIST ?
		    " (the folder must not hold a store already)" : "");
		return -1;
	}
	/* The copy holds what the store holds: only its owner may read it. */
	snprintf(err, sizeof(err), "%s/data.mdb", dir);
	if (chmod(err, 0600) == -1) {
		fprintf(out, "backup: cannot restrict %s to its owner: %s\n", err,
		    strerror(errno));
		return -1;
	}
	fprintf(out, "backup: the store of %s is copied to %s\n", cfg->data_dir, dir);
	return 0;
}
