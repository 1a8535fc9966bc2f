/*
 * The event generator of the randomized test (test_e2e_model.c): events
 * worth sending, chosen from the model's state (model.h) with a seeded
 * random stream, so that a seed always gives the same events.
 *
 * It only proposes: the judge (model_event()) says what the broker must
 * answer, whatever the generator meant.  Every event is dated
 * MODEL_GEN_LAG_MS before base, the broker's clock at the last jump, one
 * millisecond after the one before (exact resends keep their old date).
 */
#ifndef RELAIS_E2E_MODEL_GEN_H
#define RELAIS_E2E_MODEL_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "model.h"

#define MODEL_GEN_HISTORY   64              /* accepted events kept per agent */
#define MODEL_GEN_LAG_MS    (30 * 60000LL)  /* events dated before the clock */

struct model_gen {
	struct model *m;
	uint64_t rng;
	long ids;                   /* event, referral, appointment ids */
	int64_t base;               /* the broker's clock at the last jump */
	long since_jump;
	int npartners;              /* agents 0 .. npartners-1 are partners */
	const char *const *qpvs;    /* the territory's QPVs */
	int nqpvs;
	json_t *history[MODEL_MAX_AGENTS][MODEL_GEN_HISTORY];
	int nhistory[MODEL_MAX_AGENTS];
};

/* A generator over m, seeded; qpvs must outlive it. */
void gen_init(struct model_gen *g, struct model *m, uint64_t seed,
    int npartners, const char *const *qpvs, int nqpvs);
void gen_free(struct model_gen *g);

/* The seeded stream: 0 .. n-1 (always one draw, whatever n), percent. */
int gen_rnd(struct model_gen *g, int n);
bool gen_chance(struct model_gen *g, int percent);
int gen_slot(struct model_gen *g);

/* Events, new references.  gen_wrong_event() returns NULL when the state
 * offers no such mistake to make. */
json_t *gen_partner_event(struct model_gen *g, int sender);
json_t *gen_wrong_event(struct model_gen *g, int sender);
/* Exits and erasures in coordinator c's territory. */
json_t *gen_coordinator_event(struct model_gen *g, int c);
/* Acknowledging or resolving the alerts the model last read. */
json_t *gen_alert_event(struct model_gen *g, int c);

/* Remember an event the broker accepted from agent, for resends. */
void gen_keep(struct model_gen *g, int agent, json_t *ev);

#endif
