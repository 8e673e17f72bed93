package main

import (
	"context"
	"reflect"
	"testing"

	"google.golang.org/grpc"
)

func TestLateInterceptorsRunInOrder(t *testing.T) {
	var got []string
	mark := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			got = append(got, name+">")
			resp, err := h(ctx, req)
			got = append(got, "<"+name)
			return resp, err
		}
	}
	a := &app{}
	a.intercept(mark("audit"), nil)
	a.intercept(mark("quota"), nil)
	resp, err := a.lateUnary(context.Background(), "req", &grpc.UnaryServerInfo{}, func(ctx context.Context, req any) (any, error) {
		got = append(got, "handler")
		return req.(string) + "-done", nil
	})
	if err != nil || resp != "req-done" {
		t.Fatalf("resp %v err %v", resp, err)
	}
	want := []string{"audit>", "quota>", "handler", "<quota", "<audit"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}

	empty := &app{}
	if resp, err := empty.lateUnary(context.Background(), 1, &grpc.UnaryServerInfo{}, func(ctx context.Context, req any) (any, error) { return req, nil }); err != nil || resp != 1 {
		t.Fatalf("no interceptors: %v %v", resp, err)
	}
}
