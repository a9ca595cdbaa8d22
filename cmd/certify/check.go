package main

// check refuses train flag values that have no meaning, before any work
// (and, for a sweep, before any point runs): rundir.TrainConfig.Validate,
// as an inputError.
func (tf trainFlags) check() error {
	return badInput(tf.cfg.Validate())
}
