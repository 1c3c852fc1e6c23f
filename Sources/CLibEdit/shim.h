// libedit (BSD editline) for `lorad chat`'s line editing and history, loaded at run time with
// dlopen: the installed binary must start on a host with only libopenblas and libuv (a new user's
// first run must not fail on a missing extra), and line editing is a comfort, not a requirement.
// Without libedit2, lorad_libedit_load() answers 0 and chat reads plain lines, as it does when stdin
// is no terminal.
// el_set and history are variadic, which Swift cannot call, so each use gets one fixed-signature
// wrapper here. Only ChatREPL's LineEditor imports this module (as `internal import`). The
// header <histedit.h> (libedit-dev) is needed to build, for the types only; nothing links libedit.
#ifndef LORAD_CLIBEDIT_SHIM_H
#define LORAD_CLIBEDIT_SHIM_H

#include <dlfcn.h>
#include <stdio.h>
#include <wchar.h>
#include <histedit.h>

typedef char *(*lorad_el_prompt_fn)(EditLine *);

struct lorad_libedit {
    int loaded;  /* 0: not tried, 1: ready, -1: not available */
    EditLine *(*el_init)(const char *, FILE *, FILE *, FILE *);
    void (*el_end)(EditLine *);
    const char *(*el_gets)(EditLine *, int *);
    int (*el_set)(EditLine *, int, ...);
    int (*el_source)(EditLine *, const char *);
    History *(*history_init)(void);
    void (*history_end)(History *);
    int (*history)(History *, HistEvent *, int, ...);
};

/// The one table (a function-local static: Swift's importer emits the functions of this header,
/// not its global variables).
static inline struct lorad_libedit *lorad_libedit_table(void) {
    static struct lorad_libedit table;
    return &table;
}

#define lorad_libedit_fns (*lorad_libedit_table())

/// Loads libedit once; 1 when every function was found. Called on the main thread before any use.
static inline int lorad_libedit_load(void) {
    struct lorad_libedit *f = &lorad_libedit_fns;
    if (f->loaded) return f->loaded == 1;
    f->loaded = -1;
    void *lib = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libedit.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return 0;
    f->el_init = (EditLine *(*)(const char *, FILE *, FILE *, FILE *))dlsym(lib, "el_init");
    f->el_end = (void (*)(EditLine *))dlsym(lib, "el_end");
    f->el_gets = (const char *(*)(EditLine *, int *))dlsym(lib, "el_gets");
    f->el_set = (int (*)(EditLine *, int, ...))dlsym(lib, "el_set");
    f->el_source = (int (*)(EditLine *, const char *))dlsym(lib, "el_source");
    f->history_init = (History *(*)(void))dlsym(lib, "history_init");
    f->history_end = (void (*)(History *))dlsym(lib, "history_end");
    f->history = (int (*)(History *, HistEvent *, int, ...))dlsym(lib, "history");
    if (!f->el_init || !f->el_end || !f->el_gets || !f->el_set || !f->el_source || !f->history_init
        || !f->history_end || !f->history) {
        return 0;
    }
    f->loaded = 1;
    return 1;
}

/// An editor on the standard streams (C globals Swift 6 will not touch from a nonisolated context).
static inline EditLine *lorad_el_init(const char *program) {
    return lorad_libedit_fns.el_init(program, stdin, stdout, stderr);
}

static inline void lorad_el_end(EditLine *el) { lorad_libedit_fns.el_end(el); }

static inline const char *lorad_el_gets(EditLine *el, int *count) { return lorad_libedit_fns.el_gets(el, count); }

static inline int lorad_el_source(EditLine *el, const char *file) { return lorad_libedit_fns.el_source(el, file); }

static inline History *lorad_history_init(void) { return lorad_libedit_fns.history_init(); }

static inline void lorad_history_end(History *h) { lorad_libedit_fns.history_end(h); }

static inline int lorad_el_set_prompt(EditLine *el, lorad_el_prompt_fn fn) {
    return lorad_libedit_fns.el_set(el, EL_PROMPT, fn);
}

static inline int lorad_el_set_editor(EditLine *el, const char *mode) {
    return lorad_libedit_fns.el_set(el, EL_EDITOR, mode);
}

/// libedit's own signal handling re-raises SIGINT to the whole process group; lorad handles SIGINT
/// itself, so it stays off.
static inline int lorad_el_set_signal(EditLine *el, int on) {
    return lorad_libedit_fns.el_set(el, EL_SIGNAL, on);
}

/// Puts the terminal in the editor's mode now. el_gets itself does so only when it reads the first
/// key, after printing the prompt, so keys typed right after the prompt appears would be echoed and
/// line-buffered by the terminal (an arrow key shows as ^[[A, Ctrl-D ends the input).
static inline int lorad_el_prepare_terminal(EditLine *el) {
    return lorad_libedit_fns.el_set(el, EL_PREP_TERM, 1);
}

static inline int lorad_el_set_getc(EditLine *el, el_rfunc_t fn) {
    return lorad_libedit_fns.el_set(el, EL_GETCFN, fn);
}

static inline int lorad_el_set_history(EditLine *el, History *h) {
    return lorad_libedit_fns.el_set(el, EL_HIST, lorad_libedit_fns.history, h);
}

static inline int lorad_history_set_size(History *h, int size) {
    HistEvent ev;
    return lorad_libedit_fns.history(h, &ev, H_SETSIZE, size);
}

/// Consecutive duplicates are kept once.
static inline int lorad_history_set_unique(History *h, int on) {
    HistEvent ev;
    return lorad_libedit_fns.history(h, &ev, H_SETUNIQUE, on);
}

static inline int lorad_history_enter(History *h, const char *line) {
    HistEvent ev;
    return lorad_libedit_fns.history(h, &ev, H_ENTER, line);
}

static inline int lorad_history_load(History *h, const char *path) {
    HistEvent ev;
    return lorad_libedit_fns.history(h, &ev, H_LOAD, path);
}

static inline int lorad_history_save(History *h, const char *path) {
    HistEvent ev;
    return lorad_libedit_fns.history(h, &ev, H_SAVE, path);
}

#endif
