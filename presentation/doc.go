// Package presentation draws what a certify report says: the per-run
// figures (interpolation, turning rates, the Gauss length histogram, the
// certificate's L′ enclosures), the LaTeX summary table of a run, and the
// tables and figures across the runs of a study.
//
// It depends only on the report (certify.Report, and certify.StudyRun for
// studies), never on a model or a path, so everything it draws can be
// redrawn from certificate.json alone (certify.ReadReport). It is the only
// package that links gonum.org/v1/plot: a program that wants only a
// certificate imports certify and not this package.
package presentation
