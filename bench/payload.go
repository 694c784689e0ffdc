package bench

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	userv1 "github.com/golden-stack/golden/api/golden/user/v1"
)

// UserID is the ID every benchmark call asks for.
const UserID = "5f0c3a9e-7b1d-4e62-9c8a-2d41b7e0f3a6"

// Method is the full name of the measured call.
const Method = userv1.UserService_GetUser_FullMethodName

// created is a fixed time, so that every response has the same size.
var created = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// Response is the fixed answer of every server: about 200 bytes on the
// wire, the size of a typical account.
var Response = &userv1.GetUserResponse{User: &userv1.User{
	Id:        UserID,
	Username:  "alice.pleasance.liddell.wonderland-1865-1871",
	Email:     "alice.pleasance.liddell.wonderland-1865-1871@looking-glass.mail.example.org",
	CreatedAt: timestamppb.New(created),
	UpdatedAt: timestamppb.New(created.Add(90 * 24 * time.Hour)),
}}

// Request is the call every client sends.
func Request() *userv1.GetUserRequest { return &userv1.GetUserRequest{Id: UserID} }

// Handler answers GetUser with Response whatever the ID; every server runs
// it, so that only the instrumentation around it differs. The other methods
// answer Unimplemented.
type Handler struct {
	userv1.UnimplementedUserServiceServer
}

// GetUser returns Response.
func (Handler) GetUser(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	return Response, nil
}
