// Package e2e holds breakwater's end-to-end test (`make e2e`): the built
// exporter, a real Prometheus with the rule pack, a real Alertmanager with
// the example routes and a webhook receiver run by the test, and scenario
// containers on the real Docker engine whose alerts must reach the receiver.
// Logs of a failed run are kept under e2e/logs/<timestamp>/.
package e2e
