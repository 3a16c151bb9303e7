package llama

import "sync/atomic"

// task is a unit of parallel work. run is called once per worker with that
// worker's index; workers share the work by claiming chunks from an atomic
// counter inside the task, so no result depends on how many workers there are
// or which worker computes what.
type task interface {
	run(worker int)
}

// pool is a fixed set of worker goroutines started once per model. Dispatch
// sends a pointer through a channel, so running a task allocates nothing.
type pool struct {
	workers int
	minWork int         // tasks smaller than this run on the caller alone
	wake    []chan task // one per worker except the caller's (index 0)
	done    chan struct{}
}

func newPool(workers int) *pool {
	p := &pool{workers: max(workers, 1), minWork: minParallelWork, done: make(chan struct{}, workers)}
	p.wake = make([]chan task, p.workers)
	for i := 1; i < p.workers; i++ {
		p.wake[i] = make(chan task, 1)
		go p.loop(i)
	}
	return p
}

func (p *pool) loop(i int) {
	for t := range p.wake[i] {
		t.run(i)
		p.done <- struct{}{}
	}
}

// minParallelWork is the work (about one multiply-add each) below which a task
// runs on the calling goroutine alone: waking workers costs microseconds, more
// than small matmuls of a tiny model take. Results do not depend on it.
const minParallelWork = 32 << 10

// do runs t on every worker, the calling goroutine being worker 0, and returns
// when all have finished. work estimates t's size in multiply-adds.
func (p *pool) do(t task, work int) {
	if work < p.minWork || p.workers == 1 {
		t.run(0)
		return
	}
	for i := 1; i < p.workers; i++ {
		p.wake[i] <- t
	}
	t.run(0)
	for i := 1; i < p.workers; i++ {
		<-p.done
	}
}

// close stops the workers.
func (p *pool) close() {
	for i := 1; i < p.workers; i++ {
		close(p.wake[i])
	}
	p.workers = 1
}

// counter hands out chunk indices to workers.
type counter struct{ next atomic.Int64 }

func (c *counter) reset()     { c.next.Store(0) }
func (c *counter) claim() int { return int(c.next.Add(1) - 1) }
