module github.com/switchyard-io/switchyard/services/router

go 1.26.0
