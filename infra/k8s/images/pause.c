/* The pod sandbox's process: it holds the pod's namespaces, exits on SIGINT/SIGTERM and reaps
 * children when told of one (SIGCHLD): it sleeps in pause(), never busy-waits on wait4(). */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signal_number) { (void)signal_number; _exit(0); }

static void reap(int signal_number) {
  (void)signal_number;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction on_stop = {0}, on_child = {0};
  on_stop.sa_handler = stop;
  sigaction(SIGINT, &on_stop, NULL);
  sigaction(SIGTERM, &on_stop, NULL);
  on_child.sa_handler = reap;
  on_child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &on_child, NULL);
  for (;;) pause();
}
