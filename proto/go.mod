module github.com/switchyard-io/switchyard/proto

go 1.26.0
