module github.com/switchyard-io/switchyard/services/authsvc

go 1.26.0
