package sweep

import (
	"context"
	"sync"
)

// Run calls do(ctx, item) for every item with at most jobs calls at once
// (jobs < 1 means 1), in order of the items as workers free up. It stops
// starting new items once ctx is done; items already started run to their
// end (do should watch ctx). It returns each item's error, indexed like
// items; items never started get ctx.Err().
func Run[T any](ctx context.Context, items []T, jobs int, do func(context.Context, T) error) []error {
	if jobs < 1 {
		jobs = 1
	}
	errs := make([]error, len(items))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < jobs && w < len(items); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = do(ctx, items[i])
			}
		}()
	}
	i := 0
feed:
	for ; i < len(items); i++ {
		if ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
			break feed
		case next <- i:
		}
	}
	close(next)
	wg.Wait()
	for ; i < len(items); i++ {
		errs[i] = ctx.Err()
	}
	return errs
}
