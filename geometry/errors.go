package geometry

import (
	"errors"
	"fmt"
)

// ErrZeroSpeed is returned, or wrapped, when the velocity v = γ′(α) is the
// zero vector, so the unit tangent T = v/‖v‖ is undefined (THEORY.md §3:
// "report it, never divide by zero silently"). The pointwise functions return
// ErrZeroSpeed itself; the integrators return a *ZeroSpeedError, for which
// errors.Is(err, ErrZeroSpeed) is true.
var ErrZeroSpeed = errors.New("geometry: zero speed: unit tangent undefined")

// ErrNonFinite is returned, or wrapped, when a velocity, acceleration or
// integrand value is NaN or ±Inf.
var ErrNonFinite = errors.New("geometry: non-finite value")

// ErrNotConverged is returned by the adaptive integrators when the error
// estimate is still above the tolerance after the evaluation budget is spent
// (or every subinterval is too short to split further). The Result returned
// with it holds the best estimate and its (too large) error estimate.
var ErrNotConverged = errors.New("geometry: adaptive quadrature did not reach the tolerance")

// ErrBadKink is wrapped by the errors returned for an invalid Kink list:
// a kink outside [lo, hi] or two kinks at the same α.
var ErrBadKink = errors.New("geometry: invalid kink")

// ErrZeroChord is returned by ChordDeviation when γ(1) = γ(0), so the chord
// direction u is undefined.
var ErrZeroChord = errors.New("geometry: zero chord: γ(1) = γ(0)")

// ZeroSpeedError reports the parameter α at which the velocity of a path was
// found to vanish: exactly, at an evaluation point, or (for a cusp lying
// between evaluation points) as the point of smallest speed in a subinterval
// that the adaptive rule could not split further while the tangent still
// jumped across it. errors.Is(err, ErrZeroSpeed) is true.
type ZeroSpeedError struct {
	Alpha float64
}

// Error formats the error with its α.
func (e *ZeroSpeedError) Error() string {
	return fmt.Sprintf("geometry: zero speed at α = %v: unit tangent undefined", e.Alpha)
}

// Is reports whether target is ErrZeroSpeed.
func (e *ZeroSpeedError) Is(target error) bool { return target == ErrZeroSpeed }

// TangentJumpError reports that the unit tangent turns by at least Angle
// (radians) inside a subinterval around Alpha too short to split further, while
// the speed there stays bounded away from zero and no Kink was given at that
// point: the path has a corner that the caller did not report (THEORY.md §3,
// piecewise-smooth paths), or a Kink's Left or Right velocity disagrees in
// direction with the Curve beside it. Pass the corner as a Kink to have its
// angle counted.
type TangentJumpError struct {
	Alpha float64
	Angle float64
}

// Error formats the error with its α and angle.
func (e *TangentJumpError) Error() string {
	return fmt.Sprintf("geometry: unit tangent jumps by %v rad near α = %v, where no Kink was given", e.Angle, e.Alpha)
}

func nonFiniteAt(alpha float64) error {
	return fmt.Errorf("geometry: velocity, acceleration or integrand not finite at α = %v: %w", alpha, ErrNonFinite)
}
