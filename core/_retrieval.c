/* The similar-run ranking of core/history.py, compiled.
 *
 * history.HistoryIndex prepares a query (which posting lists it touches, with what weights)
 * and hands it to ``top_similar``: here, or in its numpy twin ``history._top_numpy`` when this
 * module was not built. Both follow one rule and compute every score with the same IEEE
 * operations in the same order (built with -ffp-contract=off, so no fused multiply-add), so
 * that they choose the same runs bit for bit: the dataset builder and the decision service
 * agree whichever one a machine has, and a test compares the two on random indexes.
 *
 * Why compiled: a decision's retrieval is a few thousand posting entries merged, counted,
 * scored and cut to the top n. numpy spends most of that time in per-call overhead of its
 * forty array operations; one pass here is an order of magnitude faster.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t run;
    int64_t started;
    double score;
} Pick;

/* Sort keys[0:len] ascending (LSD radix, 11 bits a pass, only the passes the keys' range
 * needs); spare is scratch of the same size. */
static void radix_sort(uint64_t *keys, uint64_t *spare, Py_ssize_t len) {
    if (len < 2)
        return;
    uint64_t least = keys[0], most = keys[0];
    for (Py_ssize_t i = 1; i < len; i++) {
        if (keys[i] < least)
            least = keys[i];
        if (keys[i] > most)
            most = keys[i];
    }
    uint64_t range = most - least;
    uint32_t count[2048];
    uint64_t *from = keys, *to = spare;
    for (int shift = 0; shift < 64 && (range >> shift) != 0; shift += 11) {
        memset(count, 0, sizeof(count));
        for (Py_ssize_t i = 0; i < len; i++)
            count[((from[i] - least) >> shift) & 2047] += 1;
        uint32_t sum = 0;
        for (int d = 0; d < 2048; d++) {
            uint32_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (Py_ssize_t i = 0; i < len; i++)
            to[count[((from[i] - least) >> shift) & 2047]++] = from[i];
        uint64_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != keys)
        memcpy(keys, from, (size_t)len * sizeof(uint64_t));
}

/* First index in a[0:len] whose value is >= key (a sorted ascending). */
static Py_ssize_t lower_bound(const int64_t *a, Py_ssize_t len, int64_t key) {
    Py_ssize_t lo = 0, hi = len;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (a[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int int64_buffer(PyObject *obj, Py_buffer *view, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != 8 || view->format == NULL ||
        (strcmp(view->format, "q") != 0 && strcmp(view->format, "l") != 0 &&
         strcmp(view->format, "<q") != 0 && strcmp(view->format, "<l") != 0 &&
         strcmp(view->format, "=q") != 0 && strcmp(view->format, "=l") != 0)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a contiguous int64 array", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int float64_buffer(PyObject *obj, Py_buffer *view, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != 8 || view->format == NULL ||
        (strcmp(view->format, "d") != 0 && strcmp(view->format, "<d") != 0 &&
         strcmp(view->format, "=d") != 0)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a contiguous float64 array", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* a ranks before b: higher score, then newer, then lower run index. */
static int ranks_before(const Pick *a, const Pick *b) {
    if (a->score != b->score)
        return a->score > b->score;
    if (a->started != b->started)
        return a->started > b->started;
    return a->run < b->run;
}

/* a comes before b in the answer: newer, then lower run index. */
static int newer(const Pick *a, const Pick *b) {
    if (a->started != b->started)
        return a->started > b->started;
    return a->run < b->run;
}

static PyObject *top_similar(PyObject *self, PyObject *args) {
    PyObject *postings, *kinds, *by_job_obj, *job_started_obj, *sizes_obj, *started_obj;
    double qsize[3], weight[3], recency;
    long long window, before, edge[3];
    Py_ssize_t n;
    int in_order;
    if (!PyArg_ParseTuple(args, "O!O!OOOOL(ddd)(ddd)dnpL(LLL)", &PyList_Type, &postings,
                          &PyList_Type, &kinds, &by_job_obj, &job_started_obj, &sizes_obj,
                          &started_obj, &window, &qsize[0], &qsize[1], &qsize[2],
                          &weight[0], &weight[1], &weight[2], &recency, &n, &in_order, &before,
                          &edge[0], &edge[1], &edge[2]))
        return NULL;
    Py_ssize_t n_postings = PyList_GET_SIZE(postings);
    if (PyList_GET_SIZE(kinds) != n_postings) {
        PyErr_SetString(PyExc_ValueError, "one kind per posting list");
        return NULL;
    }
    if (n <= 0)
        return PyList_New(0);

    PyObject *result = NULL;
    Py_buffer by_job = {0}, job_started = {0}, sizes = {0}, started = {0};
    Py_buffer *views = NULL;
    Py_ssize_t *lo = NULL, *hi = NULL;
    int *kind = NULL;
    Py_ssize_t got = 0;
    uint64_t *keys = NULL, *spare = NULL;
    Pick *best = NULL;

    if (int64_buffer(by_job_obj, &by_job, "by_job") < 0)
        return NULL;
    if (int64_buffer(job_started_obj, &job_started, "job_started") < 0)
        goto release_by_job;
    if (float64_buffer(sizes_obj, &sizes, "sizes") < 0)
        goto release_job_started;
    if (int64_buffer(started_obj, &started, "started") < 0)
        goto release_sizes;

    views = PyMem_Calloc((size_t)n_postings + 1, sizeof(Py_buffer));
    lo = PyMem_Calloc((size_t)n_postings + 1, sizeof(Py_ssize_t));
    hi = PyMem_Calloc((size_t)n_postings + 1, sizeof(Py_ssize_t));
    kind = PyMem_Calloc((size_t)n_postings + 1, sizeof(int));
    if (views == NULL || lo == NULL || hi == NULL || kind == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const Py_ssize_t n_runs = started.len / 8;
    if (sizes.len / 8 < 4 * n_runs) {
        PyErr_SetString(PyExc_ValueError, "sizes: four per run");
        goto done;
    }
    const int64_t *all_started = started.buf;
    /* The runs a query may see: those that started before it (a prefix of the index when runs
     * were added in start order; else all of them, filtered by start time when scored). */
    const int64_t cutoff = in_order ? lower_bound(all_started, n_runs, before) : n_runs;
    const double *all_sizes = sizes.buf;

    /* Each posting list cut to the runs before the cut-off, and to its window. */
    Py_ssize_t total = 0;
    for (; got < n_postings; got++) {
        long k = PyLong_AsLong(PyList_GET_ITEM(kinds, got));
        if (k == -1 && PyErr_Occurred())
            goto done;
        if (k < 0 || k > 2) {
            PyErr_SetString(PyExc_ValueError, "a kind is 0, 1 or 2");
            goto done;
        }
        kind[got] = (int)k;
        if (int64_buffer(PyList_GET_ITEM(postings, got), &views[got], "posting") < 0)
            goto done;
        Py_ssize_t len = views[got].len / 8;
        Py_ssize_t end = lower_bound(views[got].buf, len, cutoff);
        Py_ssize_t start = window < 0 ? 0 : (end > window ? end - window : 0);
        lo[got] = start;
        hi[got] = end;
        total += end - start;
    }

    /* The n most recent earlier runs of the job type (and any tied with the oldest of them
     * on start time, when runs arrived in order: a tie is broken by run index). */
    const int64_t *job_runs = by_job.buf;
    const int64_t *job_start = job_started.buf;
    Py_ssize_t job_len = by_job.len / 8;
    Py_ssize_t r_end = lower_bound(job_runs, job_len, cutoff), r_start;
    if (r_end <= n)
        r_start = 0;
    else if (!in_order)
        r_start = r_end - n;
    else
        r_start = lower_bound(job_start, r_end, job_start[r_end - n]);
    total += r_end - r_start;
    if (total == 0) {
        result = PyList_New(0);
        goto done;
    }

    /* Candidates in run order: every entry as the key run * 4 + kind (3: the recent runs,
     * no overlap), radix-sorted; a run's entries are then side by side, and how many of each
     * kind name it is its overlap with the query. */
    keys = PyMem_Malloc((size_t)total * sizeof(uint64_t));
    spare = PyMem_Malloc((size_t)total * sizeof(uint64_t));
    best = PyMem_Malloc((size_t)n * sizeof(Pick));
    if (keys == NULL || spare == NULL || best == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t filled = 0;
    for (Py_ssize_t p = 0; p <= n_postings; p++) {
        const int64_t *runs = p < n_postings ? views[p].buf : job_runs;
        Py_ssize_t a = p < n_postings ? lo[p] : r_start, b = p < n_postings ? hi[p] : r_end;
        uint64_t k = p < n_postings ? (uint64_t)kind[p] : 3;
        for (Py_ssize_t j = a; j < b; j++) {
            int64_t run = runs[j];
            if (run < 0 || run >= n_runs) {
                PyErr_SetString(PyExc_IndexError, "a posting names a run the index lacks");
                goto done;
            }
            keys[filled++] = (uint64_t)run * 4 + k;
        }
    }
    radix_sort(keys, spare, filled);
    double bonus[4], inverse_size[3];
    for (int b = 0; b < 4; b++)
        bonus[b] = recency / (1.0 + (double)b);
    for (int k = 0; k < 3; k++)
        inverse_size[k] = 1.0 / qsize[k];
    Py_ssize_t kept = 0;
    for (Py_ssize_t at = 0; at < filled;) {
        int64_t run = (int64_t)(keys[at] >> 2);
        uint32_t count[4] = {0, 0, 0, 0};
        for (; at < filled && (int64_t)(keys[at] >> 2) == run; at++)
            count[keys[at] & 3] += 1;
        /* Score the run; keep the n best by (score desc, newer, run index). */
        int64_t start_ms = all_started[run];
        if (!in_order && !(start_ms < before))
            continue;
        int64_t age = before - start_ms;
        int bucket = (age >= edge[0]) + (age >= edge[1]) + (age >= edge[2]);
        if (kept == n) {
            /* Jaccard is at most overlap / query size (a run has at least as many signals of
             * a kind as it shares): a run whose bound is below the n-th best is not chosen,
             * and its exact score need not be computed. */
            double bound = bonus[bucket];
            for (int k = 0; k < 3; k++)
                if (count[k] != 0 && weight[k] != 0.0)
                    bound += weight[k] * (double)count[k] * inverse_size[k];
            if (bound * (1.0 + 1e-9) + 1e-12 < best[n - 1].score)
                continue;
        }
        /* The exact score, as numpy computes it (a kind the run shares nothing of adds 0). */
        double score = 0.0;
        for (int k = 0; k < 3; k++) {
            if (weight[k] == 0.0 || count[k] == 0)
                continue;
            double inter = (double)count[k];
            double uni = (qsize[k] + all_sizes[4 * run + k]) - inter;
            double jaccard = inter / uni;
            double term = jaccard * weight[k];
            score = score + term;
        }
        score = score + bonus[bucket];
        Pick pick = {run, start_ms, score};
        if (kept == n && !ranks_before(&pick, &best[n - 1]))
            continue;
        Py_ssize_t at = kept < n ? kept++ : n - 1;
        while (at > 0 && ranks_before(&pick, &best[at - 1])) {
            best[at] = best[at - 1];
            at--;
        }
        best[at] = pick;
    }

    /* The chosen ones, newest first. */
    for (Py_ssize_t i = 1; i < kept; i++) {
        Pick pick = best[i];
        Py_ssize_t at = i;
        while (at > 0 && newer(&pick, &best[at - 1])) {
            best[at] = best[at - 1];
            at--;
        }
        best[at] = pick;
    }
    result = PyList_New(kept);
    if (result == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < kept; i++) {
        PyObject *value = PyLong_FromLongLong(best[i].run);
        if (value == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, value);
    }

done:
    for (Py_ssize_t p = 0; p < got; p++)
        PyBuffer_Release(&views[p]);
    PyMem_Free(views);
    PyMem_Free(lo);
    PyMem_Free(hi);
    PyMem_Free(kind);
    PyMem_Free(keys);
    PyMem_Free(spare);
    PyMem_Free(best);
    PyBuffer_Release(&started);
release_sizes:
    PyBuffer_Release(&sizes);
release_job_started:
    PyBuffer_Release(&job_started);
release_by_job:
    PyBuffer_Release(&by_job);
    return result;
}

static PyMethodDef methods[] = {
    {"top_similar", top_similar, METH_VARARGS,
     "top_similar(postings, kinds, by_job, job_started, sizes, started, window,\n"
     "            query_sizes, weights, recency, n, in_order, before_ms, edges) -> list[int]\n\n"
     "Indices of the top n similar runs, newest first (history._top_numpy's rule)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_retrieval",
    "The similar-run ranking of swarm_planner.core.history, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__retrieval(void) { return PyModule_Create(&module); }
