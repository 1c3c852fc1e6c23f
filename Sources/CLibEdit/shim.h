// libedit (BSD editline) for `lorad chat`'s line editing and history. el_set and history are
// variadic, which Swift cannot call, so each use gets one fixed-signature wrapper here. Only
// ChatREPL's LineEditor imports this module (as `internal import`).
#ifndef LORAD_CLIBEDIT_SHIM_H
#define LORAD_CLIBEDIT_SHIM_H

#include <stdio.h>
#include <wchar.h>
#include <histedit.h>

typedef char *(*lorad_el_prompt_fn)(EditLine *);

/// An editor on the standard streams (C globals Swift 6 will not touch from a nonisolated context).
static inline EditLine *lorad_el_init(const char *program) {
    return el_init(program, stdin, stdout, stderr);
}

static inline int lorad_el_set_prompt(EditLine *el, lorad_el_prompt_fn fn) {
    return el_set(el, EL_PROMPT, fn);
}

static inline int lorad_el_set_editor(EditLine *el, const char *mode) {
    return el_set(el, EL_EDITOR, mode);
}

/// libedit's own signal handling re-raises SIGINT to the whole process group; lorad handles SIGINT
/// itself, so it stays off.
static inline int lorad_el_set_signal(EditLine *el, int on) {
    return el_set(el, EL_SIGNAL, on);
}

/// Puts the terminal in the editor's mode now. el_gets itself does so only when it reads the first
/// key, after printing the prompt, so keys typed right after the prompt appears would be echoed and
/// line-buffered by the terminal (an arrow key shows as ^[[A, Ctrl-D ends the input).
static inline int lorad_el_prepare_terminal(EditLine *el) {
    return el_set(el, EL_PREP_TERM, 1);
}

static inline int lorad_el_set_getc(EditLine *el, el_rfunc_t fn) {
    return el_set(el, EL_GETCFN, fn);
}

static inline int lorad_el_set_history(EditLine *el, History *h) {
    return el_set(el, EL_HIST, history, h);
}

static inline int lorad_history_set_size(History *h, int size) {
    HistEvent ev;
    return history(h, &ev, H_SETSIZE, size);
}

/// Consecutive duplicates are kept once.
static inline int lorad_history_set_unique(History *h, int on) {
    HistEvent ev;
    return history(h, &ev, H_SETUNIQUE, on);
}

static inline int lorad_history_enter(History *h, const char *line) {
    HistEvent ev;
    return history(h, &ev, H_ENTER, line);
}

static inline int lorad_history_load(History *h, const char *path) {
    HistEvent ev;
    return history(h, &ev, H_LOAD, path);
}

static inline int lorad_history_save(History *h, const char *path) {
    HistEvent ev;
    return history(h, &ev, H_SAVE, path);
}

#endif
