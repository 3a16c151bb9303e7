/* C ABI of the cib_mistralrs static library (engines/mistralrs/bridge/src/lib.rs). */
#ifndef CIB_MISTRALRS_H
#define CIB_MISTRALRS_H

#include <stddef.h>
#include <stdint.h>

typedef struct CibHandle CibHandle;

/* Cold-start breakdown, ns. */
typedef struct {
	int64_t context_init_ns;
	int64_t weights_ns;
	int64_t engine_start_ns;
	int64_t max_seq_len;
} CibLoadStats;

/* mistral.rs's own timing of a non-streamed request. */
typedef struct {
	int64_t prompt_tokens;
	int64_t completion_tokens;
	double prompt_ms;
	double completion_ms;
	double total_ms;
	double avg_prompt_tok_per_sec;
	double avg_compl_tok_per_sec;
	int64_t wall_ns;
} CibUsage;

/* Return codes: 0 ok, 1 runtime, 2 bad request, 3 out of memory, 4 unsupported, 5 load. */
int cib_mistralrs_load(const char *model_dir, const char *device, const char *dtype, int threads,
		       int paged_attn, int receiver, CibHandle **out, CibLoadStats *stats, char *err, size_t err_len);
int cib_mistralrs_generate(CibHandle *h, const uint32_t *prompt, size_t n_prompt, size_t n_new,
			   int stream, uint32_t *out_ids, int64_t *out_ns, CibUsage *usage, char *err,
			   size_t err_len);
void cib_mistralrs_settings(const CibHandle *h, char *buf, size_t len);
void cib_mistralrs_free(CibHandle *h);
const char *cib_mistralrs_versions(void);
int cib_mistralrs_has_cuda(void);

#endif
