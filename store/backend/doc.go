// Package backend opens the store.Store a configuration names: the factory
// over store/sqlite and store/postgres, so that firmad and firmactl never
// import a backend themselves.
package backend
