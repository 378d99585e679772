module github.com/switchyard-io/switchyard/services/linkd

go 1.26.0
