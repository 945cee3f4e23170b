// Single-step tracer: runs argv, follows forks/clones/execs, records every distinct
// instruction pointer (as offset into the mapping named by TARGET substring) per process image.
// Output: lines "pid image_no offset_hex" to OUT file (unique per pid/image).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <errno.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/user.h>
#include <stdint.h>

#define MAXP 64
struct proc { pid_t pid; unsigned long lo, hi; int image; int active; unsigned char *seen; unsigned long seen_len; } P[MAXP];
static const char *target;
static FILE *out;

static struct proc *find(pid_t pid) { for (int i=0;i<MAXP;i++) if (P[i].active && P[i].pid==pid) return &P[i]; return NULL; }
static void flush(struct proc *p) {
  if (!p->seen) return;
  unsigned long n=0;
  for (unsigned long i=0;i<p->seen_len;i++) if (p->seen[i]) { fprintf(out, "%d %d %lx\n", p->pid, p->image, i); n++; }
  free(p->seen); p->seen=NULL;
  fprintf(stderr, "pid %d image %d: %lu distinct ips\n", p->pid, p->image, n);
}
static void load_map(struct proc *p) {
  char path[64]; snprintf(path, sizeof path, "/proc/%d/maps", p->pid);
  FILE *f=fopen(path,"r"); p->lo=p->hi=0; if(!f) return;
  char line[512]; unsigned long first=0;
  while (fgets(line,sizeof line,f)) {
    unsigned long a,b,off; char perm[8];
    if (sscanf(line,"%lx-%lx %7s %lx",&a,&b,perm,&off)!=4) continue;
    if (!strstr(line,target)) continue;
    if (!first) first=a - off; // base
    if (b>p->hi) p->hi=b;
  }
  fclose(f);
  p->lo=first;
  if (p->hi>p->lo) { p->seen_len=p->hi-p->lo; p->seen=calloc(p->seen_len,1); }
}
static struct proc *add(pid_t pid, int image) {
  for (int i=0;i<MAXP;i++) if (!P[i].active) { P[i]=(struct proc){.pid=pid,.image=image,.active=1}; load_map(&P[i]); return &P[i]; }
  fprintf(stderr,"too many\n"); exit(1);
}
int main(int argc, char **argv) {
  target=getenv("TARGET"); out=fopen(getenv("OUT"),"w");
  pid_t c=fork();
  if (!c) { ptrace(PTRACE_TRACEME,0,0,0); raise(SIGSTOP); execv(argv[1], argv+1); _exit(127); }
  int st; waitpid(c,&st,0);
  ptrace(PTRACE_SETOPTIONS,c,0,PTRACE_O_TRACEFORK|PTRACE_O_TRACECLONE|PTRACE_O_TRACEVFORK|PTRACE_O_TRACEEXEC|PTRACE_O_EXITKILL);
  struct proc *p0=add(c,0); (void)p0; // before exec: no target mapping yet
  ptrace(PTRACE_SINGLESTEP,c,0,0);
  int images=0;
  for (;;) {
    pid_t pid=waitpid(-1,&st,__WALL);
    if (pid<0) break;
    struct proc *p=find(pid);
    if (WIFEXITED(st)||WIFSIGNALED(st)) { if(p){flush(p);p->active=0;} continue; }
    if (!p) { p=add(pid,++images); }
    int sig=WSTOPSIG(st), ev=st>>16, deliver=0;
    if (ev==PTRACE_EVENT_EXEC) {
      flush(p); p->image=++images; load_map(p);
      if (!p->seen) { fprintf(stderr,"pid %d exec'd a non-target: detach\n",pid); ptrace(PTRACE_DETACH,pid,0,0); p->active=0; continue; }
    } else if (ev==PTRACE_EVENT_FORK||ev==PTRACE_EVENT_CLONE||ev==PTRACE_EVENT_VFORK) {
      unsigned long np; ptrace(PTRACE_GETEVENTMSG,pid,0,&np);
      struct proc *q=find(np); if(!q){ q=add(np,++images);} 
    } else if (ev==PTRACE_EVENT_STOP) {
    } else if (sig==SIGTRAP) {
      struct user_regs_struct r; if (ptrace(PTRACE_GETREGS,pid,0,&r)==0 && p->seen && r.rip>=p->lo && r.rip<p->hi) p->seen[r.rip-p->lo]=1;
    } else if (sig==SIGSTOP) {
      load_map(p);
    } else deliver=sig;
    if (!p->seen && p->image>0) load_map(p);
    ptrace(PTRACE_SINGLESTEP,pid,0,deliver);
  }
  for (int i=0;i<MAXP;i++) if (P[i].active) flush(&P[i]);
  fclose(out);
  return 0;
}
