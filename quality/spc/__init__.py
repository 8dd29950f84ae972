"""Statistical process control on the judged parameters of every step: control charts (I-MR,
X-bar R, X-bar S), Nelson's rules, capability indices, frozen phase II baselines and the
`spc_signal` hold rule's settings."""
